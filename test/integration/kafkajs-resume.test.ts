import { describe, expect, it } from 'vitest';
import { consumerConfig } from '../../src/kafka/client.js';
import { createTopic, kafkaForTest, uniqueName, waitFor } from '../helpers.js';

/**
 * kafkajs 2.2.4: a fetcher that finds every partition it would fetch paused sleeps
 * `maxWaitTimeInMs` before it looks again, and a partition resumed meanwhile waits out the rest of
 * that sleep. wharf pauses a partition while its fetched messages wait in the fetch buffer and
 * resumes it once they are all handed on (src/kafka/flow-control.ts); with few partitions (the
 * pool's bench has 2) all are paused at once often, and the threads then ran dry for up to
 * wharf's 100 ms. wharf's patch (patches/kafkajs+2.2.4.patch, consumerGroup.js) ends the wait at
 * the resume. This test proves it with a wait long enough to see: 5 s.
 */
describe("kafkajs's fetcher (patched)", () => {
  it('fetches a partition again as soon as it is resumed, not after maxWaitTimeInMs', async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('resume'), 1);
    const producer = await k.producer();
    await producer.send({ topic, messages: [{ value: 'first' }] });
    const consumer = await k.consumer(consumerConfig(uniqueName('resume'), { maxWaitTimeInMs: 5_000 }));
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const batches: { value: string; at: number }[] = [];
    await consumer.run({
      eachBatch: async ({ batch }) => {
        batches.push({ value: batch.messages.map((m) => m.value!.toString()).join(','), at: performance.now() });
        // Every partition paused: the fetcher has nothing to fetch and waits.
        if (batches.length === 1) consumer.pause([{ topic }]);
      },
    });
    await waitFor(() => batches.length === 1, { timeoutMs: 30_000, message: 'the first batch' });
    await producer.send({ topic, messages: [{ value: 'second' }] });
    // Well inside the fetcher's 5 s wait, which began as the first batch was handled.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const resumedAt = performance.now();
    consumer.resume([{ topic }]);
    await waitFor(() => batches.length === 2, { timeoutMs: 30_000, message: 'the batch after the resume' });
    expect(batches.map((b) => b.value)).toEqual(['first', 'second']);
    // Unpatched: ~4,700 ms (the rest of the 5 s wait).
    expect(batches[1]!.at - resumedAt).toBeLessThan(1_500);
  });
});
