import type { KafkaMessage } from 'kafkajs';
import type { Logger } from '../log.js';
import type { InboundMessage } from './message.js';
import { HEADERS } from './codec.js';
import type { DeadLetterReason, DeadLetterSource } from './dead-letter.js';
import type { InboundDecoder } from './inbound.js';
import { isRetriable, retryDelay, sleep, type RetryPolicy, type Slots } from './retry.js';

export interface DeliveryStats {
  /** Messages whose handler succeeded. */
  handled: number;
  /** Handler attempts that threw. */
  errors: number;
  /** Attempts made again after a failure. */
  retries: number;
  /** Messages parked in `<topic>.dlq`: handlers out of attempts, and rejected input. */
  deadLettered: number;
  /** Of those, values that never reached the handler (too large, not decodable, failing the schema). */
  rejected: number;
}

export interface LaneContext {
  decode: InboundDecoder;
  handle(message: InboundMessage): Promise<void>;
  park(source: DeadLetterSource, reason: DeadLetterReason): Promise<void>;
  retry: RetryPolicy;
  slots: Slots;
  stats: DeliveryStats;
  logger: Logger;
  /** While the group rebalances, a promise of its end: no new message starts before it. */
  gate(): Promise<void> | undefined;
  /**
   * A promise of the next event-loop turn when the lanes have kept the thread for a while. Each
   * message continues the lane in a microtask, so CPU-bound handlers would otherwise run queue
   * after queue without letting kafkajs read a fetch response or send a heartbeat.
   */
  breathe(): Promise<void> | undefined;
  /** A message is finished: `committable` when handled or parked, not when abandoned. */
  finished(lane: PartitionLane, message: KafkaMessage, committable: boolean): void;
}

export interface PartitionLane {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to accept from a fetch; lower ones were taken already (redelivered after a rebalance). */
  nextOffset: bigint | undefined;
  /** False once revoked: its results are not this member's to commit or park any more. */
  readonly owned: boolean;
  push(messages: KafkaMessage[]): void;
  /**
   * Stops taking messages (draining): a retry waiting is abandoned, queued messages are dropped
   * (the partition's next owner gets them from the last commit) and the one running finishes.
   * Returns how many were dropped.
   */
  stop(): number;
  /** stop(), and the partition is no longer this member's. */
  revoke(): number;
  /** Resolves when nothing runs any more. */
  idle(): Promise<void>;
}

type Outcome = 'finished' | 'abandoned';

/**
 * LaneContext.breathe for one thread's lanes: once they have run `everyMs` without the event
 * loop getting a turn, the next message waits for one (setImmediate). 10 ms keeps a CPU-bound
 * handler's fetches and heartbeats flowing at a cost of one turn per 10 ms of work.
 */
export function createBreather(everyMs = 10): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    if (performance.now() - last < everyMs) return undefined;
    return new Promise((resolve) =>
      setImmediate(() => {
        last = performance.now();
        resolve();
      }),
    );
  };
}

/**
 * One partition's messages, handled one after another in offset order: the unit of ordering.
 * Lanes run side by side, bounded by `slots`; a message waiting out a retry delay gives its slot
 * back, so a failing partition never holds up the others.
 */
export function createPartitionLane(topic: string, partition: number, ctx: LaneContext): PartitionLane {
  const queue: KafkaMessage[] = [];
  const abort = new AbortController();
  let running: Promise<void> | undefined;
  let accepting = true;
  let owned = true;
  let busy = false;
  const where = (message: KafkaMessage) => ({ topic, partition, offset: message.offset });

  /** Parks until it succeeds: a message is never committed before it is handled or parked. */
  async function park(message: KafkaMessage, reason: DeadLetterReason): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        await ctx.park({ topic, partition, message }, reason);
        ctx.stats.deadLettered++;
        ctx.logger.warn(
          { ...where(message), code: (reason.error as { code?: string }).code, reason: reason.error.message, attempts: reason.attempts },
          'message parked in the dead-letter topic',
        );
        return 'finished';
      } catch (error) {
        ctx.logger.error({ ...where(message), err: error, attempt }, 'could not park a message in the dead-letter topic; trying again');
        if (!(await sleep(retryDelay({ initialDelayMs: 200, maxDelayMs: 5_000, attempts: 0 }, attempt), abort.signal))) return 'abandoned';
      }
    }
  }

  /** Handles one message; `slot.held` says whether it still holds its slot when it returns. */
  async function process(message: KafkaMessage, slot: { held: boolean }): Promise<Outcome> {
    let inbound: InboundMessage;
    try {
      const decoded = ctx.decode(topic, partition, message);
      inbound = decoded instanceof Promise ? await decoded : decoded;
    } catch (error) {
      // Bytes that cannot become a value will not become one on a second try.
      ctx.stats.rejected++;
      return park(message, { error: error as Error, attempts: 0 });
    }
    for (let attempt = 1; ; attempt++) {
      try {
        inbound.headers[HEADERS.attempt] = String(attempt);
        await ctx.handle(inbound);
        ctx.stats.handled++;
        return 'finished';
      } catch (error) {
        ctx.stats.errors++;
        if (!owned) return 'abandoned';
        if (attempt >= ctx.retry.attempts || !isRetriable(error)) return park(message, { error: error as Error, attempts: attempt });
        ctx.stats.retries++;
        const delayMs = retryDelay(ctx.retry, attempt);
        ctx.logger.debug({ ...where(message), attempt, delayMs, err: error }, 'handler failed; retrying');
        ctx.slots.release();
        slot.held = false;
        if (!(await sleep(delayMs, abort.signal)) || !(await ctx.slots.acquire(abort.signal))) return 'abandoned';
        slot.held = true;
      }
    }
  }

  async function drain(): Promise<void> {
    while (accepting && queue.length > 0) {
      const rebalancing = ctx.gate();
      if (rebalancing) await rebalancing;
      const breath = ctx.breathe();
      if (breath) await breath;
      if (!accepting || !(ctx.slots.tryAcquire() || (await ctx.slots.acquire(abort.signal)))) break;
      if (!accepting) {
        ctx.slots.release();
        break;
      }
      const message = queue[0]!;
      const slot = { held: true };
      busy = true;
      let outcome: Outcome = 'abandoned';
      try {
        outcome = await process(message, slot);
      } finally {
        busy = false;
        if (slot.held) ctx.slots.release();
        queue.shift();
        ctx.finished(lane, message, outcome === 'finished');
      }
      if (outcome === 'abandoned') break;
    }
  }

  function kick(): void {
    running ??= drain()
      .catch((error: unknown) => ctx.logger.error({ topic, partition, err: error }, 'partition lane failed'))
      .finally(() => {
        running = undefined;
        if (accepting && queue.length > 0) kick();
      });
  }

  const lane: PartitionLane = {
    topic,
    partition,
    nextOffset: undefined,
    get owned() {
      return owned;
    },
    push(messages) {
      if (!accepting) return;
      queue.push(...messages);
      kick();
    },
    stop() {
      accepting = false;
      abort.abort();
      const keep = busy ? 1 : 0;
      const dropped = queue.length - keep;
      queue.splice(keep);
      return dropped;
    },
    revoke() {
      owned = false;
      return lane.stop();
    },
    idle: () => running ?? Promise.resolve(),
  };
  return lane;
}
