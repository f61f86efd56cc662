import { availableParallelism } from 'node:os';
import type { z } from 'zod';
import { concurrencySchema, type ConcurrencyMode, type ConcurrencyOptions } from '../delivery.js';

export type { ConcurrencyMode, ConcurrencyOptions };

/**
 * How a consumer worker spreads its messages over a pool of threads (`consumes.concurrency`).
 * The zod schema that checks these options, and their defaults, is `concurrencySchema` in src/delivery.ts.
 *
 * - `key`: messages with the same key (in the same partition) run one after another, in offset
 *   order; different keys run side by side. Messages without a key keep their partition's order
 *   among themselves.
 * - `partition`: one message at a time per partition, as the consumer-per-partition mode, but
 *   the handler runs off the consumer's thread, so fetching and heartbeats never stall.
 * - `unordered`: any message may run beside any other.
 */
export const CONCURRENCY_MODES: readonly ConcurrencyMode[] = concurrencySchema.shape.mode.unwrap().options;

/** The filled-in form. */
export type PoolSettings = Required<z.output<typeof concurrencySchema>>;

/** Defaults filled in (concurrencySchema's, and those known only here): `threads` one per CPU, `maxInFlight` the consumer's own limit. */
export function poolSettings(options: ConcurrencyOptions, fallbackMaxInFlight: number, cpus = availableParallelism()): PoolSettings {
  const { mode, threads = Math.max(1, cpus), maxInFlight = fallbackMaxInFlight } = concurrencySchema.parse(options);
  // A window smaller than the pool would leave threads idle for no reason.
  return { mode, threads, maxInFlight: Math.max(maxInFlight, threads) };
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
