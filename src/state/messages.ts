import type { ErrorCode } from '../error-codes.js';
import { TimeoutError, WharfError } from '../errors.js';
import { STATE_KINDS, type StateChange, type StateKind } from './types.js';

/**
 * Every message between a worker's state client and the store, typed in one place.
 *
 * Frames are small tuples and travel in arrays: everything a client issues in one tick goes in
 * one postMessage, and everything the store answers while handling it comes back in one. The
 * per-message cost (a thread wake-up, ~50 µs here) is paid per batch, not per operation, which is
 * where pipelined throughput comes from. Structured clone decodes without running code; the store
 * then only checks shapes and looks operations up in fixed tables (see decodeClientFrame).
 */
// 2: a counter's `slot` may answer NO_SLOT (a persisted counter: add through the store).
// 3: posted writes ('s' frames, 'q' probes) and the welcome's `flow` and `generation` buffers.
export const STATE_PROTOCOL_VERSION = 3;

/**
 * The slot answered for a persisted counter. An add in shared memory never reaches the store, so
 * it could not be written to the changelog before being acknowledged: clients send those adds to
 * the store like any other call.
 */
export const NO_SLOT = -1;

/**
 * Posted writes: the operations that answer nothing, which a worker may post to an object's
 * owner and settle as soon as the message is on the port (docs/state.md, "Posted writes"). Only
 * for objects the store said it serves itself from memory (not persisted, not a deployment's).
 */
export const POSTED_WRITES: Readonly<Partial<Record<StateKind, ReadonlySet<string>>>> = {
  map: new Set(['set']),
  namespace: new Set(['set']),
  value: new Set(['set']),
};

/** A probe's answer for an object whose writes must wait for the store (persisted, or a deployment's). */
export const NOT_POSTABLE = -1;

/** Writes a worker may have posted and the store not yet read, in messages; past it, a write waits for its answer. */
export const POSTED_WINDOW = 64;

/**
 * Int32 cells of a connection's `flow` buffer, counting the worker's messages from 1: the last one
 * that carried posted writes (the store reads up to it before serving anyone else), and the last
 * one the store read (the worker keeps within POSTED_WINDOW of it).
 */
export const FLOW_POSTED = 0;
export const FLOW_RECEIVED = 1;

/** Creation settings that travel with each call, so first use anywhere creates the object right. */
export interface ObjectInit {
  permits?: number;
  capacity?: number;
}

// client → store
export type CallFrame = [tag: 'c', id: number, kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit];
export type WatchFrame = [tag: 'w', id: number, name: string | null];
export type UnwatchFrame = [tag: 'u', id: number, subscription: number];
/** A posted write: no id and no answer; `generation` is the store's generation the worker checked its probe against. */
export type PostFrame = [tag: 's', generation: number, kind: StateKind, name: string, op: string, args: unknown[]];
/** May this worker post writes to `name`? Answered with the store's generation, or NOT_POSTABLE. */
export type ProbeFrame = [tag: 'q', id: number, kind: StateKind, name: string];
export type ClientFrame = CallFrame | WatchFrame | UnwatchFrame | PostFrame | ProbeFrame;
export type ClientMessage = ClientFrame[];

// store → client
export type ReplyFrame = [tag: 'r', id: number, value: unknown];
export type ErrorFrame = [tag: 'e', id: number, error: WireError];
export type ChangeFrame = [tag: 'x', subscription: number, change: StateChange];
export type OwnerFrame = ReplyFrame | ErrorFrame | ChangeFrame;

/** The first message on every connection: the counters' shared memory comes with it. */
export interface WelcomeMessage {
  t: 'welcome';
  version: number;
  holderId: string;
  /** Growable SharedArrayBuffer of BigInt64 counter slots; views over it track its growth. */
  counters: SharedArrayBuffer;
  /** Int32 [FLOW_POSTED, FLOW_RECEIVED] of this connection: how far the store has read the worker's messages. */
  flow: SharedArrayBuffer;
  /** Int32 [generation]: moves whenever an object may change kind (a delete, a restore); probes are good for one generation. */
  generation: SharedArrayBuffer;
}

export type OwnerMessage = WelcomeMessage | OwnerFrame[];

export interface WireError {
  code: ErrorCode;
  name: string;
  message: string;
  retriable: boolean;
  context: Record<string, unknown>;
}

export function encodeError(error: WharfError): WireError {
  return { code: error.code, name: error.name, message: error.message, retriable: error.retriable, context: error.context };
}

/** Rebuilds the error on the caller's side, so `code` and `instanceof TimeoutError` work there. */
export function decodeError(wire: WireError): WharfError {
  if (wire.code === 'ERR_TIMEOUT') return new TimeoutError(wire.message, { context: wire.context });
  return new WharfError(wire.code, wire.message, { retriable: wire.retriable, context: wire.context });
}

const KINDS: ReadonlySet<string> = new Set(STATE_KINDS);

export function isStateKind(value: unknown): value is StateKind {
  return typeof value === 'string' && KINDS.has(value);
}

function protocolError(message: string): WharfError {
  return new WharfError(
    'ERR_STATE_PROTOCOL',
    `Malformed state message: ${message}. Use createStateClient; do not post to the state port by hand.`,
  );
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A frame's request id if it has a usable one, so even a malformed call gets its error back (a posted write has none). */
export function frameId(frame: unknown): number | undefined {
  return Array.isArray(frame) && frame[0] !== 's' && isId(frame[1]) ? frame[1] : undefined;
}

function checkInit(init: unknown): ObjectInit | undefined {
  if (init === undefined) return undefined;
  if (typeof init !== 'object' || init === null || Array.isArray(init)) throw protocolError('init is not an object');
  const { permits, capacity } = init as Record<string, unknown>;
  if (permits !== undefined && typeof permits !== 'number') throw protocolError('init.permits is not a number');
  if (capacity !== undefined && typeof capacity !== 'number') throw protocolError('init.capacity is not a number');
  return { ...(permits !== undefined && { permits }), ...(capacity !== undefined && { capacity }) };
}

/** Checks one frame's shape; throws ERR_STATE_PROTOCOL. Only data is read: nothing is called. */
export function decodeClientFrame(frame: unknown): ClientFrame {
  if (!Array.isArray(frame)) throw protocolError('a frame is not an array');
  const [tag, id] = frame as unknown[];
  if (!isId(id)) throw protocolError('a frame has no numeric id');
  switch (tag) {
    case 'c': {
      const [, , kind, name, op, args, init] = frame as unknown[];
      if (!isStateKind(kind)) throw protocolError(`unknown kind ${JSON.stringify(String(kind))}`);
      if (typeof name !== 'string') throw protocolError('name is not a string');
      if (typeof op !== 'string') throw protocolError('op is not a string');
      if (!Array.isArray(args)) throw protocolError('args is not an array');
      return ['c', id, kind, name, op, args, checkInit(init)];
    }
    case 's': {
      const [, , kind, name, op, args] = frame as unknown[];
      if (!isStateKind(kind)) throw protocolError(`unknown kind ${JSON.stringify(String(kind))}`);
      if (typeof name !== 'string') throw protocolError('name is not a string');
      if (typeof op !== 'string' || POSTED_WRITES[kind]?.has(op) !== true) throw protocolError(`${String(op)} cannot be posted`);
      if (!Array.isArray(args)) throw protocolError('args is not an array');
      return ['s', id, kind, name, op, args];
    }
    case 'q': {
      const [, , kind, name] = frame as unknown[];
      if (!isStateKind(kind)) throw protocolError(`unknown kind ${JSON.stringify(String(kind))}`);
      if (typeof name !== 'string') throw protocolError('name is not a string');
      return ['q', id, kind, name];
    }
    case 'w': {
      const name = frame[2];
      if (name !== null && typeof name !== 'string') throw protocolError('watch name is not a string or null');
      return ['w', id, name];
    }
    case 'u': {
      if (!isId(frame[2])) throw protocolError('unwatch subscription is not an id');
      return ['u', id, frame[2]];
    }
    default:
      throw protocolError(`unknown frame tag ${JSON.stringify(String(tag))}`);
  }
}

export function isWelcome(message: unknown): message is WelcomeMessage {
  return typeof message === 'object' && message !== null && (message as { t?: unknown }).t === 'welcome';
}
