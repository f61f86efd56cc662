/**
 * Every message between a consumer worker (the pool's owner) and its pool threads, typed in one
 * place. piscina carries the tasks (TaskInput[] → TaskResult[]); everything else travels on a
 * control channel per thread that the thread opens itself:
 *
 *   pool thread                                   consumer worker (owner)                supervisor
 *   ── hello {threadId, control} (parentPort) ──▶ piscina 'message' event
 *                                                 ── state-port:request ─────────────────▶ store.connect(<worker>/pool/<threadId>)
 *                                                 ◀───────────────────────── state-port ──
 *   ◀──────────────── init {statePort} (control) ─
 *   ── ready | failed (control) ────────────────▶
 *   ── request (ctx.request, relayed) ──────────▶ requester.request ── reply ──▶
 *   ◀──────────────────────────── close (drain) ─
 *   ── closed ──────────────────────────────────▶
 *
 * piscina's own use of parentPort only reads the first message it gets, so the owner never
 * posts to a thread's parentPort; the thread posts its hello there, which piscina hands to the
 * owner as a 'message' event, and from then on both sides talk over the control port.
 */
import type { MessagePort } from 'node:worker_threads';
import { TimeoutError } from '../errors.js';

/** The pool's workerData: what every pool thread needs to load the service and build its `ctx`. */
export interface PoolThreadData {
  workerId: string;
  service: string;
  modulePath: string;
  /** The config's `tracing.module`, imported first (see src/worker/tracing-module.ts). */
  tracingModule?: string;
  /** The consumer group, for the process spans' `messaging.consumer.group.name`. */
  groupId?: string;
  brokers: string[];
  clientId: string;
  options: Record<string, unknown>;
  maxMessageBytes: number;
  logLevel: string;
  pretty: boolean;
  /**
   * One slot per message the pool holds at once (thread-pool.ts), shared memory: the thread
   * moves a message's slot through `Progress` as it runs it, so when piscina rejects a task
   * because its thread died, the owner knows how far each of its messages got.
   */
  progress: Int32Array;
}

/** Where a message of a task stands, in its `progress` slot. */
export const Progress = {
  /** Not started: a thread that dies now leaves it untouched. */
  Waiting: 0,
  /** Its handler runs: a thread that dies now fails this attempt. */
  Running: 1,
  /** Handled. */
  Succeeded: 2,
  /** Failed or rejected; the answer says how. */
  Ended: 3,
  /** Taken back by the owner before it began (its partition revoked, or draining): never runs. */
  Withdrawn: 4,
} as const;

export const HELLO = 'wharf:pool-hello';

export interface Hello {
  type: typeof HELLO;
  threadId: number;
  control: MessagePort;
}

/** An error as it crosses a port: structured clone keeps neither `code` nor `retriable`. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  retriable?: boolean;
}

export interface RelayedRequestOptions {
  timeoutMs?: number;
  key?: string | null;
  headers?: Record<string, string>;
  codec?: string;
}

export type OwnerToThread =
  | { type: 'init'; statePort: MessagePort; holderId: string }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: SerializedError }
  /** Drain: disconnect the thread's producer and state client, then say `closed`. */
  | { type: 'close' };

export type ThreadToOwner =
  | { type: 'ready' }
  /** Setup failed (the service module, the broker…): the owner gives up on the pool. */
  | { type: 'failed'; error: SerializedError }
  | { type: 'request'; id: number; topic: string; value: unknown; options: RelayedRequestOptions }
  | { type: 'closed' };

/**
 * One attempt at one message; a piscina task carries several (`TaskInput[]` → `TaskResult[]`,
 * run one after another). Buffers arrive as Uint8Arrays (structured clone).
 */
export interface TaskInput {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  attempt: number;
  /** Its slot in `PoolThreadData.progress`. */
  slot: number;
}

export type TaskResult =
  | { ok: true; busyMs: number }
  /** Withdrawn before it began (`Progress.Withdrawn`). */
  | { ok: false; withdrawn: true; busyMs: 0 }
  /** `rejected`: the input failed the codec, schema or size check and will never succeed. */
  | { ok: false; rejected: boolean; busyMs: number; error: SerializedError };

export function isHello(message: unknown): message is Hello {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === HELLO;
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const { code, retriable } = error as { code?: unknown; retriable?: unknown };
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof retriable === 'boolean' ? { retriable } : {}),
  };
}

/** The error again, with its `code` and `retriable` (a TimeoutError stays one, for `instanceof`). */
export function reviveError(s: SerializedError): Error {
  const error: Error & { code?: string; retriable?: boolean } =
    s.code === 'ERR_TIMEOUT' ? new TimeoutError(s.message) : new Error(s.message);
  if (!(error instanceof TimeoutError)) {
    error.name = s.name;
    if (s.code !== undefined) error.code = s.code;
    if (s.retriable !== undefined) error.retriable = s.retriable;
  }
  if (s.stack !== undefined) error.stack = s.stack;
  return error;
}
