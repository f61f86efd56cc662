import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import { KafkaError, TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TopicSpec } from '../service.js';
import { sleep } from './retry.js';

/**
 * What a broker answers about a topic it has just created while its metadata or its replicas
 * have not caught up yet: kafkajs's own "stale metadata" set, retriable by definition.
 */
const NOT_YET_SERVED = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION']);

const errorType = (error: unknown): string | undefined => {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? type : undefined;
};

/**
 * Creates topics and returns once every partition of each is served: the metadata names a
 * leader and that leader answers an offsets request. kafkajs's own `waitForLeaders` retries only
 * "leader not available"; a KRaft broker whose metadata lags the controller answers "does not
 * host this topic-partition", and a leader that has not taken over yet "not the leader", and
 * kafkajs gives up on both. This wait asks again until the deadline. Topics that already exist
 * are fine; a topic the cluster refuses (too high a replication factor, a bad config) is a
 * KafkaError naming it. Returns whether anything was created.
 */
export async function createTopics(admin: Admin, topics: ITopicConfig[], { timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<boolean> {
  const names = topics.map((t) => t.topic);
  let created: boolean;
  try {
    created = await admin.createTopics({ topics, timeout: timeoutMs, waitForLeaders: false });
  } catch (error) {
    const refused = ((error as { errors?: unknown }).errors as { topic?: string; type?: string; message: string }[] | undefined)?.filter((e) => e.type !== 'TOPIC_ALREADY_EXISTS');
    if (!refused) throw error;
    if (refused.length > 0) {
      throw new KafkaError(`The cluster refused to create ${refused.map((e) => `${e.topic ?? '?'} (${e.message})`).join(', ')}: fix the topic's settings or the cluster.`, {
        cause: error,
        context: { topics: refused.map((e) => e.topic) },
      });
    }
    created = true; // some existed, the others were created
  }
  const deadline = Date.now() + timeoutMs;
  let last = 'no metadata yet';
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: names });
      const leaderless = names.filter((name) => {
        const partitions = metadata.topics.find((t) => t.name === name)?.partitions ?? [];
        return partitions.length === 0 || partitions.some((p) => p.leader < 0);
      });
      if (leaderless.length === 0) {
        await Promise.all(names.map((name) => admin.fetchTopicOffsets(name)));
        return created;
      }
      last = `no leader yet for ${leaderless.join(', ')}`;
    } catch (error) {
      const type = errorType(error);
      if (!type || !NOT_YET_SERVED.has(type)) throw error;
      last = type;
    }
    if (Date.now() >= deadline) {
      throw new TimeoutError(`Topics ${names.join(', ')} were created but not served within ${timeoutMs} ms (${last}): check that every broker of the cluster is up.`, {
        context: { topics: names },
      });
    }
    await sleep(100);
  }
}

/**
 * Creates the topics services declare when they are missing and waits until they are served.
 * Existing topics that differ are reported, not changed.
 */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[], logger: Logger): Promise<void> {
  if (specs.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) {
      await createTopics(
        admin,
        missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions ?? 1,
          ...(s.replicationFactor ? { replicationFactor: s.replicationFactor } : {}),
          configEntries: s.configEntries ?? [],
        })),
      );
      logger.info({ topics: missing.map((s) => s.topic) }, 'created missing topics');
    }
    const metadata = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
    for (const spec of specs) {
      const topic = metadata.topics.find((t) => t.name === spec.topic);
      if (spec.numPartitions && topic && topic.partitions.length !== spec.numPartitions) {
        logger.warn({ topic: spec.topic, declared: spec.numPartitions, actual: topic.partitions.length }, 'topic exists with another partition count');
      }
      if (topic?.partitions.some((p) => p.leader < 0)) {
        throw new KafkaError(`Topic ${spec.topic} has partitions without a leader: check that every broker of the cluster is up.`, { retriable: true, context: { topic: spec.topic } });
      }
    }
  } finally {
    await admin.disconnect();
  }
}
