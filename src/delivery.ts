/**
 * How a service's consumer takes its messages: retries, commit batching, backpressure, the
 * inbound size limit and a thread pool for the handler. One shared vocabulary, imported by the
 * consumer runner (src/kafka/), the pool (src/pool/), the worker protocol, the service API and
 * the config schema (src/config/schema.ts holds the zod shape that checks it). Imports nothing.
 */

export type ConcurrencyMode = 'key' | 'partition' | 'unordered';

export interface ConcurrencyOptions {
  mode?: ConcurrencyMode;
  /** Pool threads per consumer worker; default: the machine's available parallelism. */
  threads?: number;
  /** Messages taken from Kafka and not finished, per consumer worker; above it fetching pauses. Default: `consumes.maxInFlight`. */
  maxInFlight?: number;
}

/** The filled-in delivery settings of one service's consumer role. */
export interface DeliverySettings {
  retry: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  commit: { intervalMs: number; threshold: number };
  maxInFlight: number;
  maxInFlightPerPartition: number;
  partitionsConsumedConcurrently: number;
  maxMessageBytes: number;
  pipelineSends: boolean;
}

/** What a `consumes` block may set (definition or config): every delivery key optional. */
export interface DeliveryOptions {
  retry?: Partial<DeliverySettings['retry']>;
  commit?: Partial<DeliverySettings['commit']>;
  maxInFlight?: number;
  maxInFlightPerPartition?: number;
  partitionsConsumedConcurrently?: number;
  maxMessageBytes?: number;
  /**
   * The next message of a partition may start while the previous one's sends and reply are under
   * way (commits still wait for them; docs/messaging.md). false: one at a time, for a service
   * that needs its previous message's effects durable before the next one starts.
   */
  pipelineSends?: boolean;
  /** Handlers in a thread pool: see src/pool/settings.ts and docs/pool.md. */
  concurrency?: ConcurrencyOptions;
}

const DELIVERY_KEYS = ['maxInFlight', 'maxInFlightPerPartition', 'partitionsConsumedConcurrently', 'maxMessageBytes'] as const;

/** `over` on top of `under`, key by key, ignoring keys that are absent or undefined (other keys of the objects are left out). */
export function mergeDeliveryOptions(under: DeliveryOptions, over: DeliveryOptions): DeliveryOptions {
  const defined = <T extends object>(o: T | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  const out: DeliveryOptions = {};
  for (const key of DELIVERY_KEYS) {
    const value = over[key] ?? under[key];
    if (value !== undefined) out[key] = value;
  }
  const pipelineSends = over.pipelineSends ?? under.pipelineSends;
  if (pipelineSends !== undefined) out.pipelineSends = pipelineSends;
  if (under.retry || over.retry) out.retry = { ...defined(under.retry), ...defined(over.retry) };
  if (under.commit || over.commit) out.commit = { ...defined(under.commit), ...defined(over.commit) };
  if (under.concurrency || over.concurrency) out.concurrency = { ...defined(under.concurrency), ...defined(over.concurrency) };
  return out;
}

/** What a consumer does when neither its definition nor the config says otherwise. */
export const DELIVERY_DEFAULTS = {
  retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 2_000 },
  commit: { intervalMs: 1_000, threshold: 1_000 },
  maxInFlight: 1_000,
  maxInFlightPerPartition: 250,
  partitionsConsumedConcurrently: 16,
  maxMessageBytes: 1024 * 1024,
  pipelineSends: true,
} satisfies DeliverySettings;
