import type { Logger } from '../log.js';
import { partitionKey } from './flow-control.js';

export interface PartitionOffset {
  topic: string;
  partition: number;
  /** The next offset to read: last handled + 1, as Kafka commits it. */
  offset: string;
}

/**
 * The offset after `offset`, as Kafka commits it. Offsets are int64 decimal strings; below 2^53
 * (every offset a real log reaches) Number arithmetic is exact and far cheaper than BigInt, which
 * this runs once per message.
 */
export function nextOffset(offset: string): string {
  const n = Number(offset);
  return Number.isSafeInteger(n + 1) ? String(n + 1) : (BigInt(offset) + 1n).toString();
}

export interface CommitterOptions {
  commit(offsets: PartitionOffset[]): Promise<void>;
  /** Commit at least this often while there is something to commit… */
  intervalMs: number;
  /** …and as soon as this many handled messages wait. */
  threshold: number;
  /** Whether a partition is still this member's: a failed commit is re-queued only for those. */
  isAssigned(topic: string, partition: number): boolean;
  logger: Logger;
}

export interface OffsetCommitter {
  /** Records that everything in the partition before `offset` is done (handled or parked). */
  mark(topic: string, partition: number, offset: string): void;
  /**
   * Records that everything up to and including `offset` is done: mark(nextOffset(offset)), with
   * the next offset worked out at commit time, once per partition, instead of once per message.
   */
  markThrough(topic: string, partition: number, offset: string): void;
  /** Drops what is waiting for a partition that is no longer ours. */
  forget(topic: string, partition: number): void;
  forgetAll(): void;
  /** Commits everything waiting now; resolves when that commit (and any already running) is done. Never rejects. */
  flush(): Promise<void>;
  start(): void;
  stop(): void;
  readonly stats: { commits: number; commitFailures: number; committedMessages: number };
}

/**
 * Batches offset commits by time and count, as kafkajs's autoCommitInterval/autoCommitThreshold
 * do — but for offsets this runner resolves itself, because it fetches ahead of its handlers
 * (kafkajs would commit what was fetched). Commits run one at a time; a failed one is tried
 * again with the next, and only ever covers messages that were finished.
 */
export function createOffsetCommitter({ commit, intervalMs, threshold, isAssigned, logger }: CommitterOptions): OffsetCommitter {
  /** `offset` to commit, or `through` (the last done; the commit is the one after). */
  type Pending = { topic: string; partition: number; offset: string | undefined; through: string | undefined };
  let pending = new Map<string, Pending>();
  let marked = 0;
  let running: Promise<void> = Promise.resolve();
  // The commit waiting for the running one: every flush until it starts shares it.
  let queued: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stats = { commits: 0, commitFailures: 0, committedMessages: 0 };
  const key = partitionKey;
  const toCommit = (e: Pending): PartitionOffset => ({
    topic: e.topic,
    partition: e.partition,
    offset: e.offset ?? nextOffset(e.through!),
  });

  async function commitNow(): Promise<void> {
    if (pending.size === 0) return;
    const batch = pending;
    const count = marked;
    pending = new Map();
    marked = 0;
    try {
      await commit(Array.from(batch.values(), toCommit));
      stats.commits++;
      stats.committedMessages += count;
    } catch (error) {
      stats.commitFailures++;
      logger.warn(
        { err: error, partitions: batch.size },
        'offset commit failed; retrying with the next commit (those messages may be delivered again)',
      );
      for (const [k, entry] of batch) if (!pending.has(k) && isAssigned(entry.topic, entry.partition)) pending.set(k, entry);
      marked += count;
    }
  }

  function flush(): Promise<void> {
    if (!queued) {
      queued = running.then(() => {
        queued = undefined;
        return commitNow();
      });
      running = queued;
    }
    return queued;
  }

  return {
    stats,
    mark(topic, partition, offset) {
      const k = key(topic, partition);
      const entry = pending.get(k);
      if (entry) {
        entry.offset = offset;
        entry.through = undefined;
      } else pending.set(k, { topic, partition, offset, through: undefined });
      if (++marked >= threshold) void flush();
    },
    markThrough(topic, partition, offset) {
      const k = key(topic, partition);
      const entry = pending.get(k);
      if (entry) {
        entry.offset = undefined;
        entry.through = offset;
      } else pending.set(k, { topic, partition, offset: undefined, through: offset });
      if (++marked >= threshold) void flush();
    },
    forget(topic, partition) {
      pending.delete(key(topic, partition));
    },
    forgetAll() {
      pending.clear();
      marked = 0;
    },
    flush,
    start() {
      timer ??= setInterval(() => {
        if (pending.size > 0) void flush();
      }, intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
