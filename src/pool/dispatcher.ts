import { setMaxListeners } from 'node:events';
import type { KafkaMessage } from 'kafkajs';
import type { DeadLetterReason, DeadLetterSource } from '../kafka/dead-letter.js';
import { isRetriable, retryDelay, sleep, type RetryPolicy } from '../kafka/retry.js';
import type { Logger } from '../log.js';
import { createKeyScheduler } from './key-scheduler.js';
import { createOffsetTracker, type OffsetTracker } from './offset-tracker.js';
import { orderingKey, type ConcurrencyMode } from './settings.js';

/**
 * The pool runner's engine, without Kafka or threads (both injected, so it is unit-tested with
 * handlers that finish in any order): messages taken from a partition wait for their key
 * (key-scheduler.ts), then for a free thread; failed attempts are retried with backoff while
 * their key stays busy, then parked; each finished message moves its partition's committable
 * offset only as far as the contiguous finished prefix (offset-tracker.ts).
 */
export interface Lane {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to take from a fetch; lower ones were taken already (fetched again after a rebalance). */
  nextOffset: bigint | undefined;
  /** False once revoked: what it still runs finishes, but is not committed by this member. */
  readonly current: boolean;
}

export interface Job {
  lane: Lane;
  message: KafkaMessage;
  /** Attempts started so far (1 while the first runs). */
  attempt: number;
  /** Aborted when the job's partition is revoked or the dispatcher stops: an attempt not begun yet should not begin. */
  signal: AbortSignal;
}

/**
 * What one attempt on a pool thread came to; `rejected`: the input can never be handled (codec,
 * schema, size); `withdrawn`: its signal aborted before it began, so it never ran.
 */
export type AttemptOutcome = { ok: true } | { ok: false; rejected: boolean; error: Error } | { ok: false; withdrawn: true };

export interface DispatcherOptions {
  mode: ConcurrencyMode;
  /** Runs one attempt of a job on a pool thread; a rejection counts as a failed attempt (a thread that died). */
  execute(job: Job): Promise<AttemptOutcome>;
  park(source: DeadLetterSource, reason: DeadLetterReason): Promise<void>;
  retry: RetryPolicy;
  /** Attempts running at once: the pool's threads. */
  concurrency: number;
  logger: Logger;
  /**
   * A message finished: handled, parked or abandoned. `partition` is undefined when its lane is
   * no longer current; `commit` is that partition's new committable offset when it moved.
   */
  onFinished(topic: string, partition: number | undefined, commit: string | undefined): void;
}

export interface DispatcherStats {
  handled: number;
  errors: number;
  retries: number;
  deadLettered: number;
  rejected: number;
  /** Taken and not finished. */
  inFlight: number;
  /** Attempts on a thread now. */
  running: number;
  /** Ready (key free), waiting for a thread. */
  queued: number;
  /** Waiting behind an earlier message of their key. */
  waitingOnKey: number;
  /** Waiting out a retry backoff, or being parked. */
  retrying: number;
}

export interface Dispatcher {
  lane(topic: string, partition: number): Lane | undefined;
  /** The partitions this member owns now: kept lanes go on, others are revoked, new ones made. */
  assign(partitions: { topic: string; partition: number }[]): void;
  push(lane: Lane, messages: KafkaMessage[]): void;
  /** Starts no attempt until resumed (the group is rebalancing). */
  pause(): void;
  resume(): void;
  /** Draining: attempts running finish (and count); nothing new starts, waiting messages are abandoned. */
  stop(): void;
  /** Resolves when nothing is in flight. */
  idle(): Promise<void>;
  readonly stats: Readonly<DispatcherStats>;
}

interface LaneState extends Lane {
  current: boolean;
  tracker: OffsetTracker;
  abort: AbortController;
}

interface Entry extends Job {
  lane: LaneState;
  ticket: number;
  order: string | undefined;
}

const laneKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { mode, retry, logger } = options;
  const lanes = new Map<string, LaneState>();
  const stats: DispatcherStats = {
    handled: 0,
    errors: 0,
    retries: 0,
    deadLettered: 0,
    rejected: 0,
    inFlight: 0,
    running: 0,
    queued: 0,
    waitingOnKey: 0,
    retrying: 0,
  };
  // Ready entries, oldest first; a deque by head index, since shift() on a long array is O(n).
  let ready: Entry[] = [];
  let head = 0;
  let paused = false;
  let stopped = false;
  let pumping = false;
  let idleWaiters: (() => void)[] = [];
  const keys = createKeyScheduler<Entry>((entry) => {
    ready.push(entry);
    pump();
  });
  const where = (e: Entry) => ({ topic: e.lane.topic, partition: e.lane.partition, offset: e.message.offset });

  function pump(): void {
    if (pumping) return; // the loop below picks up whatever a nested call added
    pumping = true;
    try {
      while (head < ready.length) {
        const entry = ready[head]!;
        if (stopped || !entry.lane.current) {
          head++;
          finish(entry, false);
          continue;
        }
        if (paused || stats.running >= options.concurrency) break;
        head++;
        start(entry);
      }
      if (head > 1_024 && head * 2 > ready.length) {
        ready = ready.slice(head);
        head = 0;
      }
    } finally {
      pumping = false;
    }
    stats.queued = ready.length - head;
    stats.waitingOnKey = keys.waiting;
  }

  function start(entry: Entry): void {
    stats.running++;
    entry.attempt++;
    options.execute(entry).then(
      (outcome) => settle(entry, outcome),
      (error: unknown) => settle(entry, { ok: false, rejected: false, error: error instanceof Error ? error : new Error(String(error)) }),
    );
  }

  function settle(entry: Entry, outcome: AttemptOutcome): void {
    stats.running--;
    if (outcome.ok) {
      stats.handled++;
      finish(entry, true);
    } else if ('withdrawn' in outcome) {
      finish(entry, false); // revoked or draining: like a message that waited for a thread
    } else if (outcome.rejected) {
      stats.rejected++;
      if (entry.lane.current) void parkThenFinish(entry, outcome.error, 0);
      else finish(entry, false); // the partition's next owner parks it
    } else {
      stats.errors++;
      if (!entry.lane.current) finish(entry, false);
      else if (entry.attempt >= retry.attempts || !isRetriable(outcome.error)) void parkThenFinish(entry, outcome.error, entry.attempt);
      else if (stopped)
        finish(entry, false); // draining: the next owner of the partition tries again
      else void backOff(entry, outcome.error);
    }
    pump();
  }

  async function backOff(entry: Entry, error: Error): Promise<void> {
    stats.retries++;
    stats.retrying++;
    const delayMs = retryDelay(retry, entry.attempt);
    logger.debug({ ...where(entry), attempt: entry.attempt, delayMs, err: error }, 'pool handler failed; retrying');
    const slept = await sleep(delayMs, entry.lane.abort.signal);
    stats.retrying--;
    if (!slept || stopped || !entry.lane.current) return finish(entry, false);
    // Its key is still busy with it: it goes first among the ready ones.
    if (head > 0) ready[--head] = entry;
    else ready.unshift(entry);
    pump();
  }

  /** Parks until that succeeds: a message is never committed before it was handled or parked. */
  async function parkThenFinish(entry: Entry, error: Error, attempts: number): Promise<void> {
    stats.retrying++;
    try {
      for (let tries = 1; ; tries++) {
        try {
          await options.park({ topic: entry.lane.topic, partition: entry.lane.partition, message: entry.message }, { error, attempts });
          stats.deadLettered++;
          logger.warn(
            { ...where(entry), code: (error as { code?: string }).code, reason: error.message, attempts },
            'message parked in the dead-letter topic',
          );
          return finish(entry, true);
        } catch (parkError) {
          logger.error({ ...where(entry), err: parkError, tries }, 'could not park a message in the dead-letter topic; trying again');
          if (!(await sleep(retryDelay({ initialDelayMs: 200, maxDelayMs: 5_000, attempts: 0 }, tries), entry.lane.abort.signal)))
            return finish(entry, false);
        }
      }
    } finally {
      stats.retrying--;
    }
  }

  function finish(entry: Entry, committable: boolean): void {
    stats.inFlight--;
    const { lane } = entry;
    const commit = committable && lane.current ? lane.tracker.complete(entry.ticket) : undefined;
    options.onFinished(lane.topic, lane.current ? lane.partition : undefined, commit);
    keys.finish(entry.order);
    if (stats.inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const wake of waiters) wake();
    }
    pump();
  }

  function revoke(key: string, lane: LaneState): void {
    lanes.delete(key);
    lane.current = false;
    lane.abort.abort();
  }

  return {
    stats,
    lane: (topic, partition) => lanes.get(laneKey(topic, partition)),
    assign(partitions) {
      const wanted = new Set(partitions.map((p) => laneKey(p.topic, p.partition)));
      for (const [key, lane] of lanes) if (!wanted.has(key)) revoke(key, lane);
      for (const { topic, partition } of partitions) {
        const key = laneKey(topic, partition);
        if (!lanes.has(key)) {
          const abort = new AbortController();
          // Each of the lane's messages held by the pool listens while it waits (thread-pool.ts
          // `run`): up to the pool's threads × 8 at once, not a leak, so no warning past Node's 10.
          setMaxListeners(0, abort.signal);
          lanes.set(key, { topic, partition, nextOffset: undefined, current: true, tracker: createOffsetTracker(), abort });
        }
      }
      pump();
    },
    push(lane, messages) {
      const state = lane as LaneState;
      if (!state.current || stopped) return;
      for (const message of messages) {
        stats.inFlight++;
        const entry: Entry = {
          lane: state,
          message,
          attempt: 0,
          signal: state.abort.signal,
          ticket: state.tracker.add(message.offset),
          order: orderingKey(mode, lane.topic, lane.partition, message.key),
        };
        keys.add(entry.order, entry);
      }
      pump();
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      pump();
    },
    stop() {
      stopped = true;
      for (const lane of lanes.values()) lane.abort.abort();
      pump();
    },
    idle: () => (stats.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
  };
}
