import { availableParallelism } from 'node:os';
import type { ConcurrencyMode, ConcurrencyOptions } from '../delivery.js';

export type { ConcurrencyMode, ConcurrencyOptions };

/**
 * How a consumer worker spreads its messages over a pool of threads (`consumes.concurrency`).
 * The zod schema that checks these options is in src/config/schema.ts with the rest of the config.
 *
 * - `key`: messages with the same key (in the same partition) run one after another, in offset
 *   order; different keys run side by side. Messages without a key keep their partition's order
 *   among themselves.
 * - `partition`: one message at a time per partition, as the consumer-per-partition mode, but
 *   the handler runs off the consumer's thread, so fetching and heartbeats never stall.
 * - `unordered`: any message may run beside any other.
 */
export const CONCURRENCY_MODES: readonly ConcurrencyMode[] = ['key', 'partition', 'unordered'];

/** The filled-in form. */
export interface PoolSettings {
  mode: ConcurrencyMode;
  threads: number;
  maxInFlight: number;
}

export const POOL_DEFAULTS = { mode: 'key' } as const satisfies Partial<PoolSettings>;

/** Defaults filled in; `maxInFlight` falls back to the consumer's own limit. */
export function poolSettings(options: ConcurrencyOptions, fallbackMaxInFlight: number, cpus = availableParallelism()): PoolSettings {
  const threads = options.threads ?? Math.max(1, cpus);
  return {
    mode: options.mode ?? POOL_DEFAULTS.mode,
    threads,
    // A window smaller than the pool would leave threads idle for no reason.
    maxInFlight: Math.max(options.maxInFlight ?? fallbackMaxInFlight, threads),
  };
}

/**
 * The ordering key of a message: messages with equal keys never run at the same time and finish
 * in offset order; `undefined` means no order to keep. Keys are scoped to their partition, where
 * Kafka's own order holds, and compared byte for byte (latin1 maps every byte to one char).
 */
export function orderingKey(mode: ConcurrencyMode, topic: string, partition: number, key: Buffer | null | undefined): string | undefined {
  switch (mode) {
    case 'unordered':
      return undefined;
    case 'partition':
      return `${topic}\u0000${partition}`;
    case 'key':
      return key ? `${topic}\u0000${partition}\u0000k${key.toString('latin1')}` : `${topic}\u0000${partition}\u0000-`;
  }
}
