import type { DeliveryOptions } from './delivery.js';
import type { Codec, CodecName } from './kafka/codec.js';
import type { InboundMessage, RequestOptions, SendOptions, TopicSpec } from './kafka/message.js';
import type { MessageSchema } from './kafka/message-schema.js';
import type { Logger } from './log.js';
import type { SharedState } from './state/client.js';
import type { StateChange } from './state/store.js';

export type { InboundMessage, RequestOptions, SendOptions, TopicSpec };

/** `ctx.request`'s deadline when neither the call nor the definition (`requestTimeoutMs`) names one. */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * What a user writes: a service module whose default export is `defineService({...})`.
 * A service may consume topics (its consumer role, one group shared by its consumer workers)
 * and may produce on a timer (its producer role). Both get a context with a logger bound to
 * service/role/worker, `send`, and the supervisor's shared state.
 */
export interface RoleContext<O = Record<string, unknown>> {
  service: string;
  role: 'consumer' | 'producer';
  workerId: string;
  log: Logger;
  /** The service's `options` from the config. */
  options: O;
  state: SharedState;
  /**
   * Sends one value (JSON unless the service or `options.codec` says otherwise); resolves once
   * every in-sync replica has it (acks=all). In a handler, it carries a child of the inbound
   * message's `traceparent`, and belongs to the message: the message is not finished (nor its
   * offset committed) before the send is acknowledged, awaited or not, and a failed send fails
   * the attempt. Elsewhere it starts a new trace.
   */
  send(topic: string, value: unknown, options?: SendOptions): Promise<void>;
  /**
   * Sends `value` to `topic` with `reply-to` (this worker's reply topic) and a new
   * `correlation-id`, and resolves with the decoded reply — the value a handler there passed to
   * `ctx.reply`. Rejects with a TimeoutError at `timeoutMs` if none came; a reply arriving later
   * is counted and logged, never delivered. See docs/messaging.md.
   */
  request<R = unknown>(topic: string, value: unknown, options?: RequestOptions<R>): Promise<R>;
}

export interface MessageContext<V = unknown, O = Record<string, unknown>> extends RoleContext<O>, InboundMessage<V> {
  /** Answers the message on its `reply-to` topic, carrying its `correlation-id`. */
  reply(value: unknown, options?: Omit<SendOptions, 'partition'>): Promise<void>;
}

export interface ProducerContext<O = Record<string, unknown>> extends RoleContext<O> {
  /** Aborted when the worker drains: a long-running `run` should return soon after. */
  signal: AbortSignal;
}

export interface ProducerRole<O = Record<string, unknown>> {
  /** Called `rate` times per second (config `rate`, `--rate`; default `defaultRate`). */
  tick?: (ctx: ProducerContext<O>, sequence: number) => Promise<void> | void;
  /** Or: one long-running loop that returns when `ctx.signal` aborts. */
  run?: (ctx: ProducerContext<O>) => Promise<void>;
  defaultRate?: number;
}

/** What a service consumes, and how (retries, commits, backpressure, size limit, a thread pool for the handler — `concurrency`, docs/pool.md: see DeliveryOptions). */
export interface ConsumeOptions extends DeliveryOptions {
  topics: string[];
  groupId?: string;
  fromBeginning?: boolean;
}

export interface ServiceDefinition<V = unknown, O = Record<string, unknown>> {
  name: string;
  consumes?: ConsumeOptions;
  /**
   * Checks every inbound value before the handler sees it (any Standard Schema: `z.object({…})`);
   * the handler gets the parsed value, typed. A value that fails is parked in `<topic>.dlq` with
   * the reasons, never retried.
   */
  schema?: MessageSchema<V>;
  /** How inbound values are decoded, and the default for sends: "json" (default), "raw" (Buffers) or a Codec. */
  codec?: CodecName | Codec;
  /** Default deadline of `ctx.request` in this service (default REQUEST_TIMEOUT_MS, 30 s). */
  requestTimeoutMs?: number;
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
