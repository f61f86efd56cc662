import kafkajs, { type Admin, type ITopicConfig, type Kafka } from 'kafkajs';
import { KafkaError, TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TopicSpec } from './message.js';
import { sleep } from './retry.js';

// kafkajs is CommonJS: its enums are reached through the default export under ESM.
const { ConfigResourceTypes } = kafkajs;

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
 * Runs `read` again while a broker answers that it does not serve the topic yet: right after a
 * create, a broker's metadata may lag the controller's for a moment (a describeConfigs sent to
 * such a broker fails with UNKNOWN_TOPIC_OR_PARTITION). Other errors, and the last one after
 * `timeoutMs`, are thrown.
 */
export async function untilServed<T>(read: () => Promise<T>, { timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      const type = errorType(error);
      if (!type || !NOT_YET_SERVED.has(type) || Date.now() >= deadline) throw error;
    }
    await sleep(100);
  }
}

/**
 * Creates topics and returns once every partition of each is served: the metadata names a
 * leader and that leader answers an offsets request. kafkajs's own `waitForLeaders` retries only
 * "leader not available"; a KRaft broker whose metadata lags the controller answers "does not
 * host this topic-partition", and a leader that has not taken over yet "not the leader", and
 * kafkajs gives up on both. This wait asks again until the deadline. Topics that already exist
 * are fine; a topic the cluster refuses (too high a replication factor, a bad config) is a
 * KafkaError naming it. Returns true when it created them all, false when some existed (kafkajs's answer).
 */
export async function createTopics(
  admin: Admin,
  topics: ITopicConfig[],
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<boolean> {
  const names = topics.map((t) => t.topic);
  let created: boolean;
  try {
    created = await admin.createTopics({ topics, timeout: timeoutMs, waitForLeaders: false });
  } catch (error) {
    // kafkajs answers false when the only errors were "already exists", and throws the per-topic errors otherwise.
    const refused = ((error as { errors?: unknown }).errors as { topic?: string; type?: string; message: string }[] | undefined)?.filter(
      (e) => e.type !== 'TOPIC_ALREADY_EXISTS',
    );
    if (!refused?.length) throw error;
    throw new KafkaError(
      `The cluster refused to create ${refused.map((e) => `${e.topic ?? '?'} (${e.message})`).join(', ')}: fix the topic's settings or the cluster.`,
      {
        cause: error,
        context: { topics: refused.map((e) => e.topic) },
      },
    );
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
      throw new TimeoutError(
        `Topics ${names.join(', ')} were created but not served within ${timeoutMs} ms (${last}): check that every broker of the cluster is up.`,
        {
          context: { topics: names },
        },
      );
    }
    await sleep(100);
  }
}

/**
 * Creates the topics services declare when they are missing and waits until they are served.
 * Existing topics are not changed; where they differ from the declaration (partitions,
 * replication factor, a declared config entry) each difference is one warning saying so.
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
    // Asked again while a broker's metadata lags: createTopics saw them served through one broker,
    // and this request may go to another that does not know them yet (a 3-node cluster in CI did).
    const metadata = await untilServed(() => admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) }));
    for (const spec of specs) {
      const topic = metadata.topics.find((t) => t.name === spec.topic);
      if (topic?.partitions.some((p) => p.leader < 0)) {
        throw new KafkaError(`Topic ${spec.topic} has partitions without a leader: check that every broker of the cluster is up.`, {
          retriable: true,
          context: { topic: spec.topic },
        });
      }
    }
    const existed = specs.filter((s) => existing.has(s.topic));
    for (const difference of await topicDifferences(admin, existed, metadata.topics)) {
      logger.warn(
        difference,
        `topic ${difference.topic} exists with another ${difference.setting} than declared (${difference.actual}, declared ${difference.declared}); wharf leaves it as it is`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}

export interface TopicDifference {
  topic: string;
  /** "partition count", "replication factor" or a config name such as "cleanup.policy". */
  setting: string;
  declared: string | number;
  actual: string | number;
}

/** How existing topics differ from their declarations, in what the declarations name. */
async function topicDifferences(
  admin: Admin,
  specs: readonly TopicSpec[],
  topics: { name: string; partitions: { replicas: number[] }[] }[],
): Promise<TopicDifference[]> {
  const differences: TopicDifference[] = [];
  for (const spec of specs) {
    const topic = topics.find((t) => t.name === spec.topic);
    if (!topic) continue;
    if (spec.numPartitions && topic.partitions.length !== spec.numPartitions) {
      differences.push({ topic: spec.topic, setting: 'partition count', declared: spec.numPartitions, actual: topic.partitions.length });
    }
    const replicas = topic.partitions[0]?.replicas.length;
    if (spec.replicationFactor && replicas !== undefined && replicas !== spec.replicationFactor) {
      differences.push({ topic: spec.topic, setting: 'replication factor', declared: spec.replicationFactor, actual: replicas });
    }
  }
  const withConfig = specs.filter((s) => (s.configEntries ?? []).length > 0);
  if (withConfig.length === 0) return differences;
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: withConfig.map((s) => ({
      type: ConfigResourceTypes.TOPIC,
      name: s.topic,
      configNames: s.configEntries!.map((e) => e.name),
    })),
  });
  for (const spec of withConfig) {
    const entries = resources.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
    for (const { name, value } of spec.configEntries!) {
      const actual = entries.find((e) => e.configName === name)?.configValue;
      if (actual !== undefined && actual !== null && actual !== value)
        differences.push({ topic: spec.topic, setting: name, declared: value, actual });
    }
  }
  return differences;
}
