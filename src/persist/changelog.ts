import { randomUUID } from 'node:crypto';
import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import { describeError, WharfError } from '../errors.js';
import { consumerConfig, producerConfig } from '../kafka/client.js';
import { ensureTopics, untilServed } from '../kafka/topics.js';
import type { Logger } from '../log.js';
import { MARKER_KEY, type ChangelogRecord } from '../state/changelog-records.js';
import type { ChangelogSink } from '../state/persister.js';

/**
 * The compacted Kafka topic behind persisted shared state. One changelog writes one partition of
 * it, so that partition's log has one order and a restore replays exactly the order its store
 * wrote in. A supervisor alone uses a one-partition topic; a deployment (src/cluster/) splits its
 * state over the topic's partitions, one writer per partition it owns. Writes use the idempotent
 * acks=all producer every worker uses; reads replay partitions from their beginning.
 */
export interface Changelog extends ChangelogSink {
  readonly topic: string;
  readonly partition: number;
  /**
   * Creates the topic (compacted, `partitions` partitions) when missing, checks it when not, connects
   * the producer. Resolves with the topic's partition count.
   */
  open(): Promise<number>;
  /**
   * Writes a marker into this changelog's partition and resolves with its offset: a replay up to it
   * reads everything written before (a marker is a record compaction cannot have removed yet,
   * unlike whatever the high watermark pointed at).
   */
  mark(): Promise<bigint>;
  /** Replays this changelog's partition from the beginning up to now, in log order; resolves with how many records. */
  replay(apply: (key: string | null, value: string | null, where: string) => void): Promise<number>;
  close(): Promise<void>;
}

export interface ChangelogOptions {
  kafka: Kafka;
  topic: string;
  logger: Logger;
  /** A replay that makes no progress for this long fails (default 60 s). */
  stallTimeoutMs?: number;
  /** The partition this changelog writes and replays (default 0). */
  partition?: number;
  /**
   * Partitions the topic is created with when missing (default 1). When undefined or 1, an existing
   * topic must have exactly one; otherwise any count is accepted and `open()` says which it is.
   */
  partitions?: number;
  /** The topic was opened already (`openChangelogTopic`, with `partitions` its count): `open()` only connects the producer. */
  topicReady?: boolean;
  /**
   * Write in transactions under this id (a deployment's owner of the state: src/cluster/). Opening
   * the changelog then fences every earlier producer of the same id: a write of a supervisor that
   * lost the state to another one fails instead of landing, and its open transaction is aborted.
   */
  transactionalId?: string;
}

/** How long an open changelog transaction may last before the broker aborts it (a write takes milliseconds). */
export const TRANSACTION_TIMEOUT_MS = 10_000;

/** Records per produce request are capped so one request stays well under the broker's 1 MB message.max.bytes. */
const MAX_REQUEST_BYTES = 512 * 1024;

function changelogError(topic: string, message: string, cause?: unknown, retriable = false): WharfError {
  return new WharfError('ERR_STATE_CHANGELOG', `State changelog ${topic}: ${message}`, { cause, retriable, context: { topic } });
}

/** Splits records into produce requests by size, keeping their order. */
function chunks(records: ChangelogRecord[]): ChangelogRecord[][] {
  const out: ChangelogRecord[][] = [];
  let current: ChangelogRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = record.key.length + (record.value?.length ?? 0) + 64;
    if (current.length > 0 && bytes + size > MAX_REQUEST_BYTES) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Creates the changelog topic when missing (compacted, `partitions` partitions) and checks it:
 * resolves with its partition count. A supervisor alone (`partitions` 1) needs exactly one.
 */
export async function openChangelogTopic(kafka: Kafka, topic: string, logger: Logger, partitions = 1): Promise<number> {
  // ensureTopics names the topic in its own lines; these name it themselves.
  const log = logger.child({ component: 'changelog' });
  try {
    await ensureTopics(kafka, [{ topic, numPartitions: partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], log);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await untilServed(() => admin.fetchTopicMetadata({ topics: [topic] }));
      const found = metadata.topics[0]?.partitions.length ?? 0;
      if (partitions === 1 && found !== 1) {
        throw changelogError(
          topic,
          `has ${found} partitions; a supervisor's own changelog needs exactly one (its order is the order of changes). Use another topic, or recreate this one with one partition.`,
        );
      }
      const described = await untilServed(() =>
        admin.describeConfigs({
          includeSynonyms: false,
          resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] }],
        }),
      );
      const policy = described.resources[0]?.configEntries.find((entry) => entry.configName === 'cleanup.policy')?.configValue ?? '';
      // Still correct without compaction (a replay reads more); with deletion, old state would be lost.
      if (!policy.split(',').includes('compact'))
        log.warn({ topic, policy }, 'the state changelog topic is not compacted: set cleanup.policy=compact on it');
      if (policy.split(',').includes('delete'))
        log.warn({ topic, policy }, 'the state changelog topic deletes old records: state older than its retention will not be restored');
      return found;
    } finally {
      await admin.disconnect();
    }
  } catch (error) {
    if (error instanceof WharfError) throw error;
    throw changelogError(topic, `could not be opened: ${describeError(error)}. Is the broker reachable?`, error, true);
  }
}

export interface ReadChangelogOptions {
  kafka: Kafka;
  topic: string;
  /** Where to stop in each partition read: the offset of its marker (`Changelog.mark`), not applied. */
  ends: ReadonlyMap<number, bigint>;
  apply: (partition: number, key: string | null, value: string | null, where: string) => void;
  /** A read that makes no progress for this long fails (default 60 s). */
  stallTimeoutMs?: number;
}

/**
 * Replays the given partitions of a changelog from their beginnings up to their ends, each in log
 * order, with one consumer (partitions not asked for are paused as soon as they show up). Resolves
 * with the number of records applied.
 */
export async function readChangelog({ kafka, topic, ends, apply, stallTimeoutMs = 60_000 }: ReadChangelogOptions): Promise<number> {
  // kafkajs consumers always join a group: a throwaway one that never commits.
  const groupId = `wharf-restore-${randomUUID()}`;
  const consumer = kafka.consumer(consumerConfig(groupId, { maxWaitTimeInMs: 100 }));
  const next = new Map<number, bigint>([...ends.keys()].map((p) => [p, 0n]));
  const open = new Set(ends.keys());
  let count = 0;
  let lastProgress = Date.now();
  let finish!: (error?: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => (finish = (error) => (error === undefined ? resolve() : reject(error))));
  if (open.size === 0) finish();
  const stall = setInterval(
    () => {
      if (Date.now() - lastProgress > stallTimeoutMs) {
        const at = [...open].map((p) => `partition ${p} at offset ${next.get(p)} of ${ends.get(p)}`).join(', ');
        finish(changelogError(topic, `restore made no progress for ${stallTimeoutMs} ms (${at}).`, undefined, true));
      }
    },
    Math.min(1_000, stallTimeoutMs),
  );
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const partition = batch.partition;
        const end = ends.get(partition);
        if (end === undefined || !open.has(partition)) {
          consumer.pause([{ topic, partitions: [partition] }]);
          return;
        }
        try {
          for (const message of batch.messages) {
            const offset = BigInt(message.offset);
            // A batch fetched again (kafkajs retries) must not be applied twice.
            if (offset < next.get(partition)! || offset > end) continue;
            next.set(partition, offset + 1n);
            lastProgress = Date.now();
            if (offset === end) {
              open.delete(partition);
              consumer.pause([{ topic, partitions: [partition] }]);
              if (open.size === 0) finish();
              return;
            }
            apply(
              partition,
              message.key?.toString('utf8') ?? null,
              message.value?.toString('utf8') ?? null,
              `${topic}[${partition}]@${offset}`,
            );
            count++;
          }
        } catch (error) {
          // Thrown out of eachBatch, kafkajs would retry forever; a bad record fails the restore.
          finish(error);
        }
      },
    });
    await finished;
    return count;
  } finally {
    clearInterval(stall);
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => admin.disconnect().catch(() => undefined));
  }
}

export function createChangelog({
  kafka,
  topic,
  logger,
  stallTimeoutMs = 60_000,
  transactionalId,
  partition = 0,
  partitions = 1,
  topicReady = false,
}: ChangelogOptions): Changelog {
  let producer: Producer | undefined;

  async function send(records: ChangelogRecord[]): Promise<string | undefined> {
    if (!producer) throw changelogError(topic, 'is not open; call open() first.');
    if (transactionalId === undefined) return sendChunks(producer, records);
    // One transaction per write: all of it lands, or (aborted, or fenced by a newer owner) none.
    const transaction = await producer.transaction();
    try {
      const last = await sendChunks(transaction, records);
      await transaction.commit();
      return last;
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async function sendChunks(target: Pick<Producer, 'send'>, records: ChangelogRecord[]): Promise<string | undefined> {
    let last: string | undefined;
    for (const chunk of chunks(records)) {
      const [meta] = await target.send({ topic, acks: -1, messages: chunk.map((r) => ({ key: r.key, value: r.value, partition })) });
      last = meta?.baseOffset === undefined ? undefined : String(BigInt(meta.baseOffset) + BigInt(chunk.length - 1));
    }
    return last;
  }

  async function mark(): Promise<bigint> {
    const markerValue = JSON.stringify({ kind: 'marker', at: new Date().toISOString(), pid: process.pid });
    const endText = await send([{ key: MARKER_KEY, value: markerValue }]);
    if (endText === undefined) throw changelogError(topic, 'the broker did not say where the restore marker landed.');
    return BigInt(endText);
  }

  return {
    topic,
    partition,
    async open() {
      const found = topicReady ? partitions : await openChangelogTopic(kafka, topic, logger, partitions);
      if (partition >= found) throw changelogError(topic, `has ${found} partitions; there is no partition ${partition} to write.`);
      try {
        producer = kafka.producer(
          transactionalId === undefined
            ? producerConfig()
            : // kafkajs allows one request in flight for a transactional producer; a fenced one must fail, not
              // retry for ever; a transaction begun while the last one's markers are written is retried soon.
              producerConfig({
                transactionalId,
                maxInFlightRequests: 1,
                retry: { retries: 12, initialRetryTime: 10, maxRetryTime: 2_000 },
                // A writer killed mid-transaction leaves it open, and every read_committed reader of
                // the topic (a restore, a replay) waits until the broker aborts it: after this long
                // (kafkajs's default is 60 s), or at once when a new owner takes the id over.
                transactionTimeout: TRANSACTION_TIMEOUT_MS,
              }),
        );
        await producer.connect();
        // kafkajs takes the transactional producer id at the first transaction: take it now, so an
        // open changelog has fenced every earlier producer of its id (and aborted what they left open).
        if (transactionalId !== undefined) await (await producer.transaction()).abort();
      } catch (error) {
        throw changelogError(topic, `could not be opened: ${describeError(error)}. Is the broker reachable?`, error, true);
      }
      return found;
    },

    mark,

    async write(records) {
      await send(records);
    },

    async replay(apply) {
      const end = await mark();
      return readChangelog({
        kafka,
        topic,
        ends: new Map([[partition, end]]),
        apply: (_partition, key, value, where) => apply(key, value, where),
        stallTimeoutMs,
      });
    },

    async close() {
      await producer?.disconnect();
      producer = undefined;
    },
  };
}
