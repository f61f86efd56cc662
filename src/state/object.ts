import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ObjectInit } from './messages.js';
import type { StateKind } from './types.js';

/**
 * What every named object in the store is: a kind, a fixed table of operations, and a JSON view
 * of itself. The store runs one operation at a time on its one thread, so an operation is atomic
 * by construction; objects never mutate a stored value in place (they replace it), so a value
 * may be referenced by a reply that has not been posted yet.
 */

/** Returned by an operation that answers later (a wait) through `call.resolve`/`call.reject`. */
export const PENDING: unique symbol = Symbol('pending');

/** The caller of one operation. */
export interface CallContext {
  /** The worker (or the supervisor's own `local`) that made the call; locks remember it. */
  readonly holderId: string;
  resolve(value: unknown): void;
  reject(error: WharfError): void;
}

export type OpHandler = (args: unknown[], call: CallContext) => unknown;

export interface StateObject {
  readonly kind: StateKind;
  /** Looked up with `get` only: an op name from the wire never reaches a property lookup. */
  readonly ops: ReadonlyMap<string, OpHandler>;
  /** Entries, items, fields; held permits for locks/semaphores; 1/0 for value, event. */
  size(): number;
  /** A JSON view, the form `load` accepts back (except where noted per kind). */
  snapshot(): unknown;
  /** Replaces the contents (operator write, restore); throws ERR_STATE_UNSUPPORTED where that makes no sense. */
  load(value: unknown): void;
  /**
   * Takes back what the changelog recorded of it, where that is more than `load` accepts from an
   * operator (a lock's holders and their leases); `load` otherwise.
   */
  restore?(value: unknown): void;
  /** Throws ERR_STATE_CONFIG when a caller asks for settings that differ from the ones it was created with. */
  checkInit?(init: ObjectInit | undefined): void;
  /** That holder is gone: give back what it held, drop its waits. */
  releaseHolder?(holderId: string): void;
  /** The object is being deleted, replaced or the store closed: reject every wait, stop every timer. */
  dispose?(error: WharfError): void;
}

/** What an object gets from the store when it is made. */
export interface ObjectEnv {
  name: string;
  /** Backed by the changelog: changes must reach the store (a counter then has no shared-memory fast path). */
  persisted?: boolean;
  /** Announces a mutation to watchers; cheap when nobody watches. */
  emit(op: string, key?: string | number, value?: unknown): void;
  logger?: Logger;
}

/** `map "conversation"`: how messages name an object. */
export function describeObject(kind: StateKind, name: string): string {
  return `${kind} ${JSON.stringify(name)}`;
}

export function unsupported(kind: StateKind, name: string, what: string): WharfError {
  return new WharfError('ERR_STATE_UNSUPPORTED', `${describeObject(kind, name)}: ${what}.`, { context: { name, kind } });
}

export function loadError(kind: StateKind, name: string, expected: string): WharfError {
  return new WharfError('ERR_STATE_VALUE', `${describeObject(kind, name)} can only be set to ${expected}.`, { context: { name, kind } });
}

/** Builds an op table from an object literal without ever consulting its prototype. */
export function opTable(handlers: Record<string, OpHandler>): ReadonlyMap<string, OpHandler> {
  return new Map(Object.entries(handlers));
}
