import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { consumerConfig, producerConfig } from '../../src/kafka/client.js';
import { createTopics, ensureTopics } from '../../src/kafka/topics.js';
import { createLogger } from '../../src/log.js';
import { createTopic, kafkaForTest, uniqueName, waitFor } from '../helpers.js';

describe('a real broker', () => {
  it('was resolved by the run itself', () => {
    expect(['env', 'testcontainers', 'local']).toContain(inject('brokerSource'));
    expect(inject('brokers')).toMatch(/^[^,]+:\d+(,[^,]+:\d+)*$/);
  });

  it('carries 1,000 keyed messages through a consumer group intact and in order per key', async () => {
    const k = kafkaForTest();
    const admin = await k.admin();
    const topic = await createTopic(admin, uniqueName('roundtrip'), 6);

    const keys = 37;
    const sent = Array.from({ length: 1_000 }, (_, i) => ({
      key: `key-${i % keys}`,
      value: JSON.stringify({ seq: i, body: 'x'.repeat(i % 50), unicode: 'wharf ⚓ ü' }),
      headers: { 'message-id': `m-${i}` },
    }));
    const producer = await k.producer(producerConfig());
    // Several batches so order per key also holds across requests.
    for (let i = 0; i < sent.length; i += 100) {
      await producer.send({ topic, acks: -1, messages: sent.slice(i, i + 100) });
    }

    const received: { key: string; value: string; id: string; partition: number }[] = [];
    const consumer = await k.consumer(consumerConfig(uniqueName('group')));
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        received.push({
          key: message.key!.toString(),
          value: message.value!.toString(),
          id: message.headers!['message-id']!.toString(),
          partition,
        });
      },
    });
    await waitFor(() => received.length >= sent.length, { message: '1,000 messages', timeoutMs: 30_000 });

    expect(received).toHaveLength(sent.length);
    // Intact: every message arrived exactly once with its key, value and headers unchanged.
    const byId = new Map(received.map((m) => [m.id, m]));
    expect(byId.size).toBe(sent.length);
    for (const m of sent) {
      const got = byId.get(m.headers['message-id'])!;
      expect(got.key).toBe(m.key);
      expect(got.value).toBe(m.value);
    }
    // In order per key, and each key stayed on one partition.
    const perKey = new Map<string, number[]>();
    const partitionOf = new Map<string, Set<number>>();
    for (const m of received) {
      perKey.set(m.key, [...(perKey.get(m.key) ?? []), JSON.parse(m.value).seq]);
      partitionOf.set(m.key, (partitionOf.get(m.key) ?? new Set()).add(m.partition));
    }
    expect(perKey.size).toBe(keys);
    for (const [key, seqs] of perKey) {
      expect(seqs, `order of ${key}`).toEqual([...seqs].sort((a, b) => a - b));
      expect(partitionOf.get(key)!.size, `partitions of ${key}`).toBe(1);
    }
    // The keys spread over the topic's partitions (the explicit partitioner hashes them).
    expect(new Set(received.map((m) => m.partition)).size).toBeGreaterThan(1);
  });

  it('serves topics as soon as createTopics returns, many at once, and again when they exist', async () => {
    const k = kafkaForTest();
    const admin = await k.admin();
    // Several topics with many partitions: the case in which a broker's metadata lagged the
    // controller and kafkajs's own waitForLeaders gave up with "does not host this topic-partition".
    const topics = Array.from({ length: 4 }, () => ({ topic: uniqueName('served'), numPartitions: 12 }));
    expect(await createTopics(admin, topics)).toBe(true);
    for (const { topic } of topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.map((o) => o.partition).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    }
    const producer = await k.producer(producerConfig());
    await producer.send({
      topic: topics[3]!.topic,
      acks: -1,
      messages: Array.from({ length: 12 }, (_, partition) => ({ partition, value: 'x' })),
    });
    expect(await admin.fetchTopicOffsets(topics[3]!.topic)).toSatisfy((o: { high: string }[]) => o.every((p) => p.high === '1'));
    // Existing topics are fine: nothing created, still served.
    expect(await createTopics(admin, topics.slice(0, 2))).toBe(false);
  });

  it('reports a topic the cluster cannot create instead of waiting for it', async () => {
    const admin = await kafkaForTest().admin();
    await expect(
      createTopics(admin, [{ topic: uniqueName('unplaceable'), numPartitions: 1, replicationFactor: 9 }], { timeoutMs: 5_000 }),
    ).rejects.toThrow(/refused to create .*unplaceable.*Replication-factor is invalid/);
  });

  it('creates declared topics that are missing, and names each way an existing one differs', async () => {
    const k = kafkaForTest();
    const admin = await k.admin();
    const lines: { level: number; msg: string; setting?: string }[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
    const existing = await createTopic(admin, uniqueName('declared'), 2);
    const missing = uniqueName('declared');
    await ensureTopics(
      k.kafka,
      [
        {
          topic: existing,
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'retention.ms', value: '604800000' },
          ],
        },
        { topic: missing, numPartitions: 4, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      ],
      logger,
    );

    expect((await admin.fetchTopicOffsets(missing)).length).toBe(4);
    const warnings = lines.filter((l) => l.level === 40);
    // The existing topic has 2 partitions and cleanup.policy delete; its RF (1) and retention (7 days, the default) match.
    expect(warnings.map((w) => w.setting).sort()).toEqual(['cleanup.policy', 'partition count']);
    expect(warnings.find((w) => w.setting === 'cleanup.policy')!.msg).toBe(
      `topic ${existing} exists with another cleanup.policy than declared (delete, declared compact); wharf leaves it as it is`,
    );
    expect(lines.some((l) => l.msg === 'created missing topics')).toBe(true);
    // The missing one was created as declared: nothing to warn about a second time.
    lines.length = 0;
    await ensureTopics(
      k.kafka,
      [{ topic: missing, numPartitions: 4, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      logger,
    );
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });
});
