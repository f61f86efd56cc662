import { randomUUID } from 'node:crypto';
import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import { describeError, WharfError } from '../errors.js';
import { consumerConfig, producerConfig } from '../kafka/client.js';
import { ensureTopics, untilServed } from '../kafka/topics.js';
import type { Logger } from '../log.js';
import { MARKER_KEY, type ChangelogRecord } from '../state/changelog-records.js';
import type { ChangelogSink } from '../state/persister.js';

/**
 * The compacted Kafka topic behind persisted shared state: one partition, so the log has one
 * order and a restore replays exactly the order the store wrote in. Writes use the idempotent
 * acks=all producer every worker uses; reads replay the topic from its beginning.
 */
export interface Changelog extends ChangelogSink {
  readonly topic: string;
  /** Creates the topic (compacted, one partition) when missing, checks it when not, connects the producer. */
  open(): Promise<void>;
  /** Replays every record from the beginning up to now, in log order; resolves with how many. */
  replay(apply: (key: string | null, value: string | null, where: string) => void): Promise<number>;
  close(): Promise<void>;
}

export interface ChangelogOptions {
  kafka: Kafka;
  topic: string;
  logger: Logger;
  /** A replay that makes no progress for this long fails (default 60 s). */
  stallTimeoutMs?: number;
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

export function createChangelog({ kafka, topic, logger, stallTimeoutMs = 60_000, transactionalId }: ChangelogOptions): Changelog {
  // ensureTopics names the topic in its own lines; these name it themselves.
  const log = logger.child({ component: 'changelog' });
  let producer: Producer | undefined;

  async function checkTopic(): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await untilServed(() => admin.fetchTopicMetadata({ topics: [topic] }));
      const partitions = metadata.topics[0]?.partitions.length ?? 0;
      if (partitions !== 1) {
        throw changelogError(
          topic,
          `has ${partitions} partitions; a changelog needs exactly one (its order is the order of changes). Use another topic, or recreate this one with one partition.`,
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
    } finally {
      await admin.disconnect();
    }
  }

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
      const [meta] = await target.send({ topic, acks: -1, messages: chunk.map((r) => ({ key: r.key, value: r.value })) });
      last = meta?.baseOffset === undefined ? undefined : String(BigInt(meta.baseOffset) + BigInt(chunk.length - 1));
    }
    return last;
  }

  return {
    topic,
    async open() {
      try {
        await ensureTopics(kafka, [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], log);
        await checkTopic();
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
        if (error instanceof WharfError) throw error;
        throw changelogError(topic, `could not be opened: ${describeError(error)}. Is the broker reachable?`, error, true);
      }
    },

    async write(records) {
      await send(records);
    },

    async replay(apply) {
      // A marker written now is the end of the replay: its offset is known, and it is a record
      // that compaction cannot have removed, unlike whatever the high watermark pointed before.
      const markerValue = JSON.stringify({ kind: 'marker', at: new Date().toISOString(), pid: process.pid });
      const endText = await send([{ key: MARKER_KEY, value: markerValue }]);
      if (endText === undefined) throw changelogError(topic, 'the broker did not say where the restore marker landed.');
      const end = BigInt(endText);
      // kafkajs consumers always join a group: a throwaway one that never commits.
      const groupId = `wharf-restore-${randomUUID()}`;
      const consumer = kafka.consumer(consumerConfig(groupId, { maxWaitTimeInMs: 100 }));
      let next = 0n;
      let count = 0;
      let lastProgress = Date.now();
      let finish!: (error?: unknown) => void;
      const finished = new Promise<void>((resolve, reject) => (finish = (error) => (error === undefined ? resolve() : reject(error))));
      const stall = setInterval(
        () => {
          if (Date.now() - lastProgress > stallTimeoutMs)
            finish(
              changelogError(topic, `restore made no progress for ${stallTimeoutMs} ms (at offset ${next} of ${end}).`, undefined, true),
            );
        },
        Math.min(1_000, stallTimeoutMs),
      );
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            try {
              for (const message of batch.messages) {
                const offset = BigInt(message.offset);
                // A batch fetched again (kafkajs retries) must not be applied twice.
                if (offset < next || offset > end) continue;
                next = offset + 1n;
                lastProgress = Date.now();
                if (offset === end) return finish();
                apply(message.key?.toString('utf8') ?? null, message.value?.toString('utf8') ?? null, `${topic}@${offset}`);
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
    },

    async close() {
      await producer?.disconnect();
      producer = undefined;
    },
  };
}
