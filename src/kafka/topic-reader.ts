import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { KafkaError, TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import { consumerConfig } from './client.js';

export interface PartitionRange {
  partition: number;
  /** First offset to read (clamped to the partition's earliest). */
  from: bigint;
  /** Read up to here, exclusive (clamped to the partition's end). */
  to: bigint;
}

export interface ReadOptions {
  kafka: Kafka;
  topic: string;
  /** Which part of each partition; undefined: all of every partition. */
  ranges?: (bounds: { partition: number; low: bigint; high: bigint }[]) => PartitionRange[];
  visit(partition: number, message: KafkaMessage): void;
  logger: Logger;
  timeoutMs?: number;
}

/**
 * Reads a bounded part of a topic once and returns — for operators' commands (the dead-letter
 * list, show and replay), not for services. kafkajs has no manual partition assignment, so this
 * joins a throwaway group of its own, seeks each partition to its start, stops at the offsets
 * that were the end when it began, and deletes the group afterwards.
 */
export async function readTopic({ kafka, topic, ranges, visit, logger, timeoutMs = 30_000 }: ReadOptions): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  let wanted: PartitionRange[];
  try {
    const offsets = await admin.fetchTopicOffsets(topic).catch((error: unknown) => {
      throw new KafkaError(`Cannot read topic ${topic}: ${(error as Error).message}`, { cause: error, context: { topic } });
    });
    const bounds = offsets.map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) }));
    const chosen = ranges ? ranges(bounds) : bounds.map((b) => ({ partition: b.partition, from: b.low, to: b.high }));
    wanted = chosen
      .map((r) => {
        const b = bounds.find((x) => x.partition === r.partition);
        return b ? { partition: r.partition, from: r.from < b.low ? b.low : r.from, to: r.to > b.high ? b.high : r.to } : undefined;
      })
      .filter((r): r is PartitionRange => r !== undefined && r.from < r.to);
  } finally {
    await admin.disconnect();
  }
  if (wanted.length === 0) return;

  const groupId = `wharf-reader-${randomBytes(6).toString('hex')}`;
  const consumer = kafka.consumer(consumerConfig(groupId, { sessionTimeout: 10_000 }));
  const left = new Set(wanted.map((r) => r.partition));
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    // Each offset is visited once, however often kafkajs fetches it (a rejoin after the
    // coordinator moved starts the group over).
    const next = new Map(wanted.map((r) => [r.partition, r.from]));
    // Seek on every join, not once after run(): run() can resolve before a join that then fails
    // ("the coordinator is loading"), and kafkajs restarts the consumer and joins again.
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const r of wanted)
        if (left.has(r.partition)) consumer.seek({ topic, partition: r.partition, offset: String(next.get(r.partition)) });
    });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const range = wanted.find((r) => r.partition === batch.partition);
        if (!range || !left.has(batch.partition)) return;
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          if (offset < next.get(batch.partition)! || offset >= range.to) continue;
          visit(batch.partition, message);
          next.set(batch.partition, offset + 1n);
        }
        if (BigInt(batch.lastOffset()) >= range.to - 1n) {
          left.delete(batch.partition);
          if (left.size === 0) finish();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(`Reading ${topic} took over ${timeoutMs} ms (partitions ${[...left].join(', ')} not done).`, {
              context: { topic },
            }),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([finished, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const cleanup = kafka.admin();
    try {
      await cleanup.connect();
      await cleanup.deleteGroups([groupId]);
    } catch (error) {
      logger.debug({ err: error, groupId }, 'could not delete a reader group (it expires by itself)');
    } finally {
      await cleanup.disconnect().catch(() => undefined);
    }
  }
}
