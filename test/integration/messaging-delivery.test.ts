import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Message } from 'kafkajs';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { DeliveryOptions } from '../../src/config/schema.js';
import { createConsumerRunner, type ConsumerRunner } from '../../src/kafka/consumer-runner.js';
import { awaited } from '../../src/worker/context.js';
import { createSender } from '../../src/kafka/sender.js';
import type { InboundMessage } from '../../src/service.js';
import { createTopic, kafkaForTest, testLogger, uniqueName, waitFor } from '../helpers.js';
import { committed, endOffsets, produce } from './messaging-helpers.js';

/**
 * The consumer runner as a worker runs it, in this process so its counters and the process's
 * memory can be read directly; on the run's broker.
 */
async function runner(
  topic: string,
  groupId: string,
  handle: (m: InboundMessage) => Promise<void>,
  delivery: DeliveryOptions = {},
): Promise<ConsumerRunner> {
  const { kafka } = kafkaForTest();
  const sender = createSender(kafka);
  await sender.connect();
  const r = createConsumerRunner({
    kafka,
    groupId,
    topics: [topic],
    sessionTimeoutMs: 6_000,
    logger: testLogger(),
    sender,
    delivery,
    handle: (m) => awaited(handle(m)),
    onFatal: (error) => {
      throw error;
    },
  });
  let drained = false;
  onTestFinished(async () => {
    if (!drained) await r.drain().catch(() => undefined);
    await sender.disconnect();
  });
  await r.start();
  return {
    start: r.start,
    get stats() {
      return r.stats;
    },
    async drain() {
      drained = true;
      await r.drain();
    },
    async abandon() {
      drained = true;
      await r.abandon();
    },
  };
}

const sum = (offsets: Map<number, bigint>) => [...offsets.values()].reduce((a, b) => a + (b > 0n ? b : 0n), 0n);
const json = (partition: number, value: unknown, key?: string): Message => ({ partition, key, value: JSON.stringify(value) });

describe('delivery', () => {
  it(
    'retries a failing message without stalling the other partitions, and keeps its own partition in order',
    { timeout: 90_000 },
    async () => {
      const k = kafkaForTest();
      const topic = await createTopic(await k.admin(), uniqueName('stall'), 4);
      const handled: { partition: number; n: number; at: number }[] = [];
      let firstFailure = 0;
      const r = await runner(
        topic,
        uniqueName('stall'),
        async (m) => {
          const { n, stuck } = m.value as { n: number; stuck?: boolean };
          if (stuck) {
            firstFailure ||= Date.now();
            throw new Error('stuck');
          }
          handled.push({ partition: m.partition, n, at: Date.now() });
        },
        { retry: { attempts: 2, initialDelayMs: 12_000, maxDelayMs: 12_000 } },
      );
      const producer = await k.producer();
      await producer.send({ topic, messages: [json(0, { n: -1, stuck: true })] });
      await waitFor(() => firstFailure > 0, { message: 'the first attempt to fail' });
      // Behind the stuck message on its partition, and on the other three.
      await producer.send({ topic, messages: Array.from({ length: 300 }, (_, n) => json(n % 4, { n })) });
      await waitFor(() => handled.filter((h) => h.partition !== 0).length === 225, { timeoutMs: 30_000, message: 'the other partitions' });
      const others = handled.filter((h) => h.partition !== 0);
      // All of them while the stuck message waited for its retry (6 to 12 s away, with jitter).
      expect(Math.max(...others.map((h) => h.at)) - firstFailure).toBeLessThan(5_500);
      expect(handled.filter((h) => h.partition === 0)).toEqual([]);
      expect(r.stats.retries).toBe(1);

      await waitFor(() => handled.filter((h) => h.partition === 0).length === 75, {
        timeoutMs: 40_000,
        message: 'partition 0 after its stuck message was parked',
      });
      expect(r.stats.deadLettered).toBe(1);
      const zero = handled.filter((h) => h.partition === 0).map((h) => h.n);
      expect(zero).toEqual([...zero].sort((a, b) => a - b));
      expect(Math.min(...handled.filter((h) => h.partition === 0).map((h) => h.at)) - firstFailure).toBeGreaterThanOrEqual(4_000);
    },
  );

  it('batches commits by count and flushes the rest when it drains', { timeout: 60_000 }, async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('commits'), 3);
    await produce(
      await k.producer(),
      topic,
      Array.from({ length: 1_050 }, (_, n) => json(n % 3, { n })),
    );

    // By count: the interval (10 min) never comes, so only the threshold can commit, per 100 or more.
    const byCount = uniqueName('commits');
    let counted = 0;
    const a = await runner(topic, byCount, async () => void counted++, { commit: { intervalMs: 600_000, threshold: 100 } });
    await waitFor(() => counted === 1_050, { message: '1,050 handled' });
    await waitFor(async () => sum(await committed(byCount, topic)) > 1_050n - 100n, { message: 'all but fewer than 100 committed' });
    expect(a.stats.commits).toBeGreaterThanOrEqual(1);
    expect(a.stats.commits, 'batched, not one commit per message').toBeLessThanOrEqual(11);
    await a.drain();
    expect(await committed(byCount, topic)).toEqual(await endOffsets(topic));

    // Neither interval nor threshold: nothing is committed until the drain flushes it all.
    const atDrain = uniqueName('commits');
    let handled = 0;
    const b = await runner(topic, atDrain, async () => void handled++, { commit: { intervalMs: 600_000, threshold: 1_000_000 } });
    await waitFor(() => handled === 1_050, { message: '1,050 handled again' });
    expect(sum(await committed(atDrain, topic))).toBe(0n);
    expect(b.stats.commits).toBe(0);
    await b.drain();
    expect(await committed(atDrain, topic)).toEqual(await endOffsets(topic));
  });

  it('commits what it handled when the group rebalances, so the next owner handles nothing twice', { timeout: 90_000 }, async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('rebalance'), 4);
    const groupId = uniqueName('rebalance');
    const seen = new Map<number, number>();
    const handle = async (m: InboundMessage) =>
      void seen.set((m.value as { n: number }).n, (seen.get((m.value as { n: number }).n) ?? 0) + 1);
    // Neither the interval nor the threshold would ever commit: only the rebalance flush can.
    const never = { commit: { intervalMs: 600_000, threshold: 1_000_000 } };
    const a = await runner(topic, groupId, handle, never);
    const producer = await k.producer();
    await produce(
      producer,
      topic,
      Array.from({ length: 500 }, (_, n) => json(n % 4, { n })),
    );
    await waitFor(() => seen.size === 500, { message: 'the first 500' });
    expect(sum(await committed(groupId, topic))).toBe(0n);
    const b = await runner(topic, groupId, handle, never);
    await waitFor(() => a.stats.rebalances >= 2 && b.stats.rebalances >= 1, { message: 'the rebalance' });
    expect(sum(await committed(groupId, topic))).toBe(500n);
    await produce(
      producer,
      topic,
      Array.from({ length: 500 }, (_, i) => json(i % 4, { n: 500 + i })),
    );
    await waitFor(() => seen.size === 1_000, { message: 'all 1,000' });
    expect([...seen.values()].every((times) => times === 1)).toBe(true);
    expect(b.stats.handled).toBeGreaterThan(0);
  });

  it('keeps memory bounded under a handler 100x slower than its producer: partitions pause, lag grows', { timeout: 120_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // V8 frees ArrayBuffer memory on a background thread after a collection, so right after gc()
    // `arrayBuffers` can still count what was just freed (by tens of MB on a busy machine). The
    // least of a few samples is what stays alive: a real leak shows in every sample.
    const memory = async () => {
      let least = Infinity;
      for (let sample = 0; sample < 4; sample++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 50));
        const m = process.memoryUsage();
        least = Math.min(least, m.heapUsed + m.arrayBuffers);
      }
      return least;
    };
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('slow'), 4);
    const groupId = uniqueName('slow');
    const maxInFlight = 100;
    let handled = 0;
    const r = await runner(
      topic,
      groupId,
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 40));
        handled++;
      },
      { maxInFlight, maxInFlightPerPartition: 50, partitionsConsumedConcurrently: 1 },
    );
    const before = await memory();
    let peakInFlight = 0;
    let sawPaused = false;
    const sampler = setInterval(() => {
      peakInFlight = Math.max(peakInFlight, r.stats.inFlight);
      sawPaused ||= r.stats.pausedPartitions > 0;
    }, 20);
    onTestFinished(() => clearInterval(sampler));

    const messages = 20_000;
    const pad = 'x'.repeat(4_000);
    const producer = await k.producer();
    const started = Date.now();
    await produce(
      producer,
      topic,
      Array.from({ length: messages }, (_, n) => json(n % 4, { n, pad })),
      200,
    );
    const producedPerSecond = messages / ((Date.now() - started) / 1000);
    // Let the slow handler run on for a while with 80 MB waiting on the broker.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const handledPerSecond = handled / ((Date.now() - started) / 1000);
    const after = await memory();
    clearInterval(sampler);
    const lag = sum(await endOffsets(topic)) - sum(await committed(groupId, topic));

    process.stderr.write(
      `backpressure: produced ${producedPerSecond.toFixed(0)}/s, handled ${handledPerSecond.toFixed(1)}/s, ` +
        `memory +${((after - before) / 1048576).toFixed(1)} MiB, peak in flight ${peakInFlight} (max seen ${r.stats.maxInFlightSeen}), lag ${lag}\n`,
    );
    expect(producedPerSecond / handledPerSecond).toBeGreaterThan(50);
    expect(r.stats.maxInFlightSeen).toBeLessThanOrEqual(maxInFlight);
    expect(peakInFlight).toBeLessThanOrEqual(maxInFlight);
    expect(sawPaused).toBe(true);
    // 80 MB were produced; what is held here is bounded by the in-flight window and one fetch.
    expect(after - before).toBeLessThan(40 * 1024 * 1024);
    expect(lag).toBeGreaterThan(BigInt(messages - 2_000));
  });
});
