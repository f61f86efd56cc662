import type { Logger } from './log.js';
import type { SharedState } from './state/client.js';
import type { StateChange } from './state/store.js';

/**
 * What a user writes: a service module whose default export is `defineService({...})`.
 * A service may consume topics (its consumer role, one group shared by its consumer workers)
 * and may produce on a timer (its producer role). Both get a context with a logger bound to
 * service/role/worker, `send`, and the supervisor's shared state.
 */
export interface InboundMessage<V = unknown> {
  value: V;
  key: string | null;
  headers: Record<string, string>;
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
}

export interface SendOptions {
  key?: string | null;
  headers?: Record<string, string>;
  partition?: number;
}

export interface RoleContext<O = Record<string, unknown>> {
  service: string;
  role: 'consumer' | 'producer';
  workerId: string;
  log: Logger;
  /** The service's `options` from the config. */
  options: O;
  state: SharedState;
  /** Sends one JSON value; resolves once every in-sync replica has it (acks=all). */
  send(topic: string, value: unknown, options?: SendOptions): Promise<void>;
}

export interface MessageContext<V = unknown, O = Record<string, unknown>> extends RoleContext<O>, InboundMessage<V> {
  /** Answers the message on its `reply-to` topic, carrying its `correlation-id`. */
  reply(value: unknown, options?: Omit<SendOptions, 'partition'>): Promise<void>;
}

export interface ProducerContext<O = Record<string, unknown>> extends RoleContext<O> {
  /** Aborted when the worker drains: a long-running `run` should return soon after. */
  signal: AbortSignal;
}

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}

export interface ProducerRole<O = Record<string, unknown>> {
  /** Called `rate` times per second (config `rate`, `--rate`; default `defaultRate`). */
  tick?: (ctx: ProducerContext<O>, sequence: number) => Promise<void> | void;
  /** Or: one long-running loop that returns when `ctx.signal` aborts. */
  run?: (ctx: ProducerContext<O>) => Promise<void>;
  defaultRate?: number;
}

export interface ServiceDefinition<V = unknown, O = Record<string, unknown>> {
  name: string;
  consumes?: { topics: string[]; groupId?: string; fromBeginning?: boolean };
  handler?: (message: InboundMessage<V>, ctx: MessageContext<V, O>) => Promise<void> | void;
  producer?: ProducerRole<O>;
  /** Topics created at start when missing. */
  topics?: (string | TopicSpec)[];
  /**
   * Runs once in the supervisor's main thread after the workers start, to watch the shared state
   * and report on it (the demo prints each exchange). Returns a cleanup. Keep it light: it shares
   * the thread that supervises every worker.
   */
  observe?: (ctx: ObserverContext) => (() => void) | void;
}

export interface ObserverContext {
  watch(name: string, listener: (change: StateChange) => void): () => void;
  /** A line for people, on stdout. */
  print(line: string): void;
  log: Logger;
}

const DEFINED = Symbol.for('wharf.service');

export type DefinedService<V = unknown, O = Record<string, unknown>> = ServiceDefinition<V, O> & { readonly [DEFINED]: true };

/** Marks a service definition; validation happens when the supervisor loads it (src/config/services.ts). */
export function defineService<V = unknown, O = Record<string, unknown>>(definition: ServiceDefinition<V, O>): DefinedService<V, O> {
  return Object.freeze({ ...definition, [DEFINED]: true as const });
}

export function isDefinedService(value: unknown): value is DefinedService {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DEFINED] === true;
}
