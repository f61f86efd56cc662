import type { Kafka } from 'kafkajs';
import { KafkaError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TopicSpec } from '../service.js';

/**
 * Creates the topics services declare when they are missing, and waits until every partition
 * has a leader (right after creation kafkajs can otherwise hit "does not host this
 * topic-partition"). Existing topics that differ are reported, not changed.
 */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[], logger: Logger): Promise<void> {
  if (specs.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions ?? 1,
          ...(s.replicationFactor ? { replicationFactor: s.replicationFactor } : {}),
          configEntries: s.configEntries ?? [],
        })),
      });
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
