import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { consumerConfig } from '../../src/kafka/client.js';
import { createConsumerRunner } from '../../src/kafka/consumer-runner.js';
import { awaited } from '../../src/worker/context.js';
import { createSender } from '../../src/kafka/sender.js';
import { createTopic, kafkaForTest, testLogger, uniqueName, waitFor } from '../helpers.js';

/**
 * kafkajs drops what a fetch brought for a partition that was paused while the fetch was in flight
 * (after decoding it) and fetches it again once the partition is resumed. wharf's backpressure
 * used to pause partitions as handlers finished, at any time, and so made the worker fetch and
 * decode a third more than it consumed in the consume benchmark. It now pauses a partition only
 * while handling that partition's own batch (src/kafka/flow-control.ts; that it pauses nowhere
 * else is checked in test/unit/messaging-flow.test.ts). Measured here in the bytes of Fetch
 * responses, as kafkajs reports them (`consumer.events.REQUEST`). The old pausing did not always
 * show here (it depended on timing: +25 % in one run of 200,000 messages, +0–1.5 % in others).
 */

const MESSAGES = 60_000;
const PARTITIONS = 12;

/** `kafka`, whose consumers add the size of each Fetch response to `bytes.fetched`. */
function countingFetches(kafka: Kafka): { kafka: Kafka; bytes: { fetched: number } } {
  const bytes = { fetched: 0 };
  const counting = Object.create(kafka) as Kafka;
  counting.consumer = (config) => {
    const consumer = kafka.consumer(config);
    consumer.on(consumer.events.REQUEST, ({ payload }) => {
      if (payload.apiName === 'Fetch') bytes.fetched += payload.size;
    });
    return consumer;
  };
  return { kafka: counting, bytes };
}

async function filledTopic(): Promise<string> {
  const { admin, producer } = kafkaForTest();
  const topic = await createTopic(await admin(), uniqueName('refetch'), PARTITIONS);
  const pad = 'x'.repeat(100);
  const messages = Array.from({ length: MESSAGES }, (_, n) => ({ key: `k${n % 64}`, value: JSON.stringify({ n, pad }) }));
  // In one transaction, as the consume benchmark writes its topics: the batches that follow make
  // the old pausing drop fetches here (a plain topic of this size did not show it).
  const p = await producer({ transactionalId: uniqueName('refetch'), maxInFlightRequests: 1, idempotent: true });
  const tx = await p.transaction();
  for (let i = 0; i < messages.length; i += 2_000) await tx.send({ topic, acks: -1, messages: messages.slice(i, i + 2_000) });
  await tx.commit();
  return topic;
}

/** Reads the whole topic with a plain kafkajs consumer; `onFetched` runs as each Fetch response arrives, before kafkajs handles it. */
async function readWithKafkajs(topic: string, onFetched: (consumer: Consumer) => void = () => undefined) {
  const { kafka, bytes } = countingFetches(kafkaForTest().kafka);
  const consumer = kafka.consumer(consumerConfig(uniqueName('refetch')));
  onTestFinished(() => consumer.disconnect());
  consumer.on(consumer.events.REQUEST, ({ payload }) => {
    if (payload.apiName === 'Fetch') onFetched(consumer);
  });
  const seen = new Map<string, number>();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages as KafkaMessage[]) {
        const key = `${batch.partition}@${m.offset}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    },
  });
  await waitFor(() => seen.size === MESSAGES, { timeoutMs: 60_000, message: `all ${MESSAGES} read (have ${seen.size})` });
  return { fetched: bytes.fetched, seen };
}

describe('fetched once: backpressure that does not make kafkajs fetch again', () => {
  it('kafkajs drops a fetch of a partition paused while it was in flight, and fetches it again', { timeout: 120_000 }, async () => {
    const topic = await filledTopic();
    const plain = await readWithKafkajs(topic);
    // Every second response finds its partitions paused (as a pause decided while it was in
    // flight would), and they are resumed on the next turn.
    let responses = 0;
    const pausing = await readWithKafkajs(topic, (consumer) => {
      if (responses++ % 2 === 1) return;
      const all = [{ topic, partitions: Array.from({ length: PARTITIONS }, (_, p) => p) }];
      consumer.pause(all);
      setImmediate(() => consumer.resume(all));
    });
    process.stderr.write(`refetch: kafkajs alone fetched ${plain.fetched} bytes, with pauses in flight ${pausing.fetched}\n`);
    expect([...pausing.seen.values()].every((times) => times === 1)).toBe(true);
    expect(pausing.fetched).toBeGreaterThan(1.5 * plain.fetched);
  });

  it("wharf's runner, pausing often, fetches the topic no more than kafkajs alone does", { timeout: 120_000 }, async () => {
    const topic = await filledTopic();
    const plain = await readWithKafkajs(topic);
    const { kafka, bytes } = countingFetches(kafkaForTest().kafka);
    const sender = createSender(kafka);
    await sender.connect();
    onTestFinished(() => sender.disconnect());
    let handled = 0;
    let sawPaused = false;
    const runner = createConsumerRunner({
      kafka,
      groupId: uniqueName('refetch'),
      topics: [topic],
      sessionTimeoutMs: 6_000,
      logger: testLogger(),
      sender,
      // Each fetch brings thousands of messages a partition, over the limits (1,000 a worker, 250 a
      // partition): partitions are paused and resumed again and again.
      handle: () => awaited(Promise.resolve(void handled++)),
      onFatal: (error) => {
        throw error;
      },
    });
    onTestFinished(() => runner.drain());
    const sampler = setInterval(() => (sawPaused ||= runner.stats.pausedPartitions > 0), 5);
    onTestFinished(() => clearInterval(sampler));
    await runner.start();
    await waitFor(() => handled >= MESSAGES, { timeoutMs: 90_000, message: `all ${MESSAGES} handled (have ${handled})` });
    process.stderr.write(`refetch: kafkajs alone fetched ${plain.fetched} bytes, wharf's runner ${bytes.fetched}\n`);
    expect(sawPaused).toBe(true);
    expect(runner.stats.handled).toBe(MESSAGES);
    expect(bytes.fetched).toBeLessThan(1.15 * plain.fetched);
  });
});
