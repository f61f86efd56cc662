import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS } from '../../src/kafka/dead-letter.js';
import { parseTraceparent } from '../../src/kafka/trace.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, startWharfForTest, uniqueName, waitFor } from '../helpers.js';
import { adminCli, deliveryTotals, produce, readAll } from './messaging-helpers.js';

const N = 10_000;
const KEYS = 100;
const fastRetries = { attempts: 3, initialDelayMs: 5, maxDelayMs: 20 };

/** A 6-partition topic of this test, `flaky` consuming it with `workers` workers, and N keyed values {i} on it. */
async function flakyRun(options: Record<string, unknown>, workers = 2) {
  const k = kafkaForTest();
  const topic = await createTopic(await k.admin(), uniqueName('flaky'), 6);
  const wharf = await startWharfForTest(
    {
      services: [
        {
          module: SERVICE_MODULES.fixture('flaky'),
          workers: { consumer: workers },
          consumes: { topics: [topic], groupId: uniqueName('flaky'), retry: fastRetries },
          options,
        },
      ],
      kafka: { clientId: uniqueName('wharf') },
    },
    { admin: true },
  );
  const { supervisor } = wharf;
  const producer = await k.producer();
  await produce(
    producer,
    topic,
    Array.from({ length: N }, (_, i) => ({ key: `k${i % KEYS}`, value: JSON.stringify({ i }), headers: { 'message-id': `m-${i}` } })),
  );
  const counter = (name: string) => supervisor.store.local.counter(name).get();
  const handled = () => (supervisor.store.get('handled')?.value ?? {}) as Record<string, string>;
  return { topic, wharf, supervisor, counter, handled };
}

describe('retries and dead letters', () => {
  it(
    'handles all 10,000 when every 10th message fails twice: retried, counted, none dead-lettered, in order per key',
    { timeout: 120_000 },
    async () => {
      const { supervisor, counter, handled } = await flakyRun({ every: 10, failFirst: 2 });
      await waitFor(() => Object.keys(handled()).length === N, { timeoutMs: 90_000, message: `${N} messages handled` });
      expect(await counter('thrown')).toBeGreaterThanOrEqual((N / 10) * 2);
      // wharf's own counts, published by each worker: every failure was retried, none parked.
      // Each worker publishes its counts with its heartbeat: wait until the last publication covers
      // the last message (errors can be final long before the last message is counted as handled).
      await waitFor(
        async () => deliveryTotals(supervisor.store).errors === (await counter('thrown')) && deliveryTotals(supervisor.store).handled >= N,
        {
          message: 'the workers to publish their counts',
        },
      );
      const totals = deliveryTotals(supervisor.store);
      expect(totals.retries).toBe(await counter('thrown'));
      expect(totals.deadLettered).toBe(0);
      expect(totals.handled).toBeGreaterThanOrEqual(N);
      expect(await counter('outOfOrder')).toBe(0);
      expect(supervisor.status().services[0]!.restarts).toBe(0);
    },
  );

  it(
    'parks the messages of a key that always fails (1% of keys) with their headers, and replays them through `admin dlq`',
    { timeout: 120_000 },
    async () => {
      const poisonKey = 'k7';
      const { topic, wharf, supervisor, counter, handled } = await flakyRun({ poisonKey });
      const poisoned = Array.from({ length: N }, (_, i) => i).filter((i) => `k${i % KEYS}` === poisonKey);
      expect(poisoned).toHaveLength(N / KEYS);
      await waitFor(() => Object.keys(handled()).length === N - poisoned.length, {
        timeoutMs: 90_000,
        message: 'every other message handled',
      });

      const dead = await readAll(`${topic}.dlq`, poisoned.length);
      expect(dead).toHaveLength(poisoned.length);
      expect(dead.map((d) => JSON.parse(d.value!.toString()).i).sort((a, b) => a - b)).toEqual(poisoned);
      for (const d of dead) {
        const i = JSON.parse(d.value!.toString()).i as number;
        expect(d.key).toBe(poisonKey);
        expect(d.headers).toMatchObject({
          [DLQ_HEADERS.topic]: topic,
          [DLQ_HEADERS.attempts]: '3',
          [DLQ_HEADERS.errorName]: 'Error',
          [DLQ_HEADERS.errorMessage]: `poisoned key ${poisonKey}`,
          'message-id': `m-${i}`,
        });
        expect(Number.isNaN(Date.parse(d.headers[DLQ_HEADERS.at]!))).toBe(false);
        expect(d.headers[DLQ_HEADERS.errorStack]).toContain('flaky.mjs');
      }
      // Each dead letter names the partition and offset it came from, all in the key's one partition, in order.
      const origins = dead.map((d) => [Number(d.headers[DLQ_HEADERS.partition]), BigInt(d.headers[DLQ_HEADERS.offset]!)] as const);
      expect(new Set(origins.map(([p]) => p)).size).toBe(1);
      expect(origins.map(([, o]) => o)).toEqual([...origins.map(([, o]) => o)].sort((a, b) => (a < b ? -1 : 1)));
      await waitFor(() => deliveryTotals(supervisor.store).deadLettered === poisoned.length, { message: 'the dead letters to be counted' });
      expect(deliveryTotals(supervisor.store).retries).toBe(poisoned.length * 2);

      // The operator's view and replay, through the admin CLI and the supervisor's admin socket.
      const admin = adminCli(wharf);
      const list = await admin(['dlq', 'list', topic, '--limit', '1000', '--json']);
      expect(list.stderr).toBe('');
      const listed = JSON.parse(list.stdout) as {
        entries: { id: string; topic: string; attempts: number; reason: string; key: string }[];
        topics: { count: number }[];
      };
      expect(listed.topics).toEqual([{ topic: `${topic}.dlq`, count: poisoned.length }]);
      expect(listed.entries).toHaveLength(poisoned.length);
      expect(
        listed.entries.every(
          (e) => e.topic === topic && e.attempts === 3 && e.reason === `poisoned key ${poisonKey}` && e.key === poisonKey,
        ),
      ).toBe(true);
      const shown = await admin(['dlq', 'show', listed.entries[0]!.id, '--json']);
      expect(JSON.parse(shown.stdout)).toMatchObject({
        id: listed.entries[0]!.id,
        valueEncoding: 'utf8',
        value: JSON.stringify({ i: poisoned[0] }),
        headers: { 'message-id': `m-${poisoned[0]}` },
      });

      await supervisor.store.local.value('cured').set(true);
      const replay = await admin(['dlq', 'replay', topic, '--all', '--json']);
      expect(replay.stderr).toBe('');
      expect(JSON.parse(replay.stdout).replayed).toHaveLength(poisoned.length);
      await waitFor(() => Object.keys(handled()).length === N, { timeoutMs: 60_000, message: 'the replayed messages to be handled' });
      const record = handled();
      for (const i of poisoned)
        expect(record[String(i)], `message ${i} handled as a replay`).toMatch(new RegExp(`^${topic}\\.dlq/\\d+/\\d+$`));
      // Replayed ones are remembered: --all again replays nothing.
      const again = JSON.parse((await admin(['dlq', 'replay', topic, '--all', '--json'])).stdout);
      expect(again.replayed).toHaveLength(0);
      expect(again.skipped).toHaveLength(poisoned.length);
      expect(await counter('outOfOrder')).toBe(0);
    },
  );

  it('gives every message a traceparent and keeps it through the dead-letter topic', async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('traced'), 1);
    await startSupervisor({
      services: [
        {
          module: SERVICE_MODULES.fixture('flaky'),
          consumes: { topics: [topic], groupId: uniqueName('flaky'), retry: { attempts: 1 } },
          options: { poisonKey: 'bad' },
        },
      ],
      kafka: { clientId: uniqueName('wharf') },
    });
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await (await k.producer()).send({ topic, messages: [{ key: 'bad', value: JSON.stringify({ i: 1 }), headers: { traceparent } }] });
    const [dead] = await readAll(`${topic}.dlq`, 1);
    expect(dead!.headers.traceparent).toBe(traceparent);
    expect(dead!.headers[DLQ_HEADERS.attempts]).toBe('1');
    expect(parseTraceparent(dead!.headers.traceparent)).toBeDefined();
  });
});
