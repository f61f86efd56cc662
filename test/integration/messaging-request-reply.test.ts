import { describe, expect, it } from 'vitest';
import { replyTopicFor } from '../../src/kafka/request-reply.js';
import { parseTraceparent } from '../../src/kafka/trace.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, uniqueName, waitFor } from '../helpers.js';
import { deliveryTotals } from './messaging-helpers.js';

type Supervisor = Awaited<ReturnType<typeof startSupervisor>>;
const counter = (s: Supervisor, name: string) => s.store.local.counter(name).get();
const failures = (s: Supervisor) =>
  (s.store.get('rr.failures')?.value ?? []) as { name: string; code: string | null; elapsedMs: number; message: string }[];

/** `requester` workers sending `count` requests each at once to `topic`, and optionally `responder`s answering on it. */
async function requestRun({
  requesters,
  count,
  timeoutMs,
  responders = 0,
  delayMs = 0,
  partitions = 8,
}: {
  requesters: number;
  count: number;
  timeoutMs: number;
  responders?: number;
  delayMs?: number;
  partitions?: number;
}) {
  const topic = await createTopic(await kafkaForTest().admin(), uniqueName('requests'), partitions);
  const clientId = uniqueName('wharf');
  const services: Record<string, unknown>[] = [
    { module: SERVICE_MODULES.fixture('requester'), workers: { producer: requesters }, options: { topic, count, timeoutMs } },
  ];
  if (responders > 0)
    services.push({
      module: SERVICE_MODULES.fixture('responder'),
      workers: { consumer: responders },
      consumes: { topics: [topic], groupId: uniqueName('responders') },
      options: { delayMs },
    });
  // Responders first: a request sent before they joined would still be answered (they read from the start), but slower.
  const supervisor = await startSupervisor({ services: services.reverse(), kafka: { clientId } });
  return { supervisor, topic, clientId };
}

describe('request/reply', () => {
  it('resolves 5,000 concurrent requests from 4 workers with their own replies, one trace per exchange', { timeout: 120_000 }, async () => {
    const { supervisor, clientId } = await requestRun({ requesters: 4, count: 1_250, timeoutMs: 60_000, responders: 4 });
    await waitFor(async () => (await counter(supervisor, 'rr.done')) === 4, { timeoutMs: 90_000, message: 'the 4 requesters to finish' });
    expect({
      ok: await counter(supervisor, 'rr.ok'),
      mismatch: await counter(supervisor, 'rr.mismatch'),
      failed: await counter(supervisor, 'rr.failed'),
    }).toEqual({ ok: 5_000, mismatch: 0, failed: 0 });
    expect(failures(supervisor)).toEqual([]);
    const elapsed = supervisor.store.get('rr.elapsedMs')!.value as number[];
    process.stderr.write(
      `request/reply: 4 x 1,250 concurrent requests answered in ${Math.max(...elapsed)} ms (slowest worker; first request of each includes its listener joining)\n`,
    );
    await waitFor(() => deliveryTotals(supervisor.store).replies === 5_000, { message: 'the requesters to publish their counts' });
    expect(deliveryTotals(supervisor.store)).toMatchObject({
      requests: 5_000,
      replies: 5_000,
      timeouts: 0,
      unknownReplies: 0,
      pendingRequests: 0,
    });
    // Each requester worker has its own reply topic.
    const topics = await (await kafkaForTest().admin()).listTopics();
    for (let i = 0; i < 4; i++) expect(topics).toContain(replyTopicFor(clientId, `requester/producer/${i}`));
    // The reply went out as a child of the request's trace (the responder echoes the traceparent it got).
    const sample = supervisor.store.get('rr.sample.requester/producer/0')!.value as { traceparent: string };
    expect(parseTraceparent(sample.traceparent)).toBeDefined();
  });

  it('rejects requests to a service that is not running with a TimeoutError at their deadline', { timeout: 60_000 }, async () => {
    const timeoutMs = 2_000;
    const { supervisor } = await requestRun({ requesters: 2, count: 100, timeoutMs });
    await waitFor(async () => (await counter(supervisor, 'rr.done')) === 2, { timeoutMs: 30_000, message: 'the requests to time out' });
    expect(await counter(supervisor, 'rr.failed')).toBe(200);
    expect(await counter(supervisor, 'rr.ok')).toBe(0);
    const failed = failures(supervisor);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) {
      expect(f).toMatchObject({ name: 'TimeoutError', code: 'ERR_TIMEOUT' });
      expect(f.message).toMatch(/^No reply from .* within 2000 ms \(correlation-id .*\): is a service consuming .* running\?$/);
      // At the deadline: not before it, and not long after (timers, one busy event loop).
      expect(f.elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(f.elapsedMs).toBeLessThan(timeoutMs + 1_500);
    }
    await waitFor(() => deliveryTotals(supervisor.store).timeouts === 200, { message: 'the timeouts to be counted' });
    expect(supervisor.status().workers.every((w) => w.state === 'ready' && w.restarts === 0)).toBe(true);
  });

  it('counts a late reply and an unknown one, and goes on working', { timeout: 60_000 }, async () => {
    const { supervisor, clientId } = await requestRun({
      requesters: 1,
      count: 20,
      timeoutMs: 1_000,
      responders: 1,
      delayMs: 1_500,
      partitions: 1,
    });
    await waitFor(async () => (await counter(supervisor, 'rr.done')) === 1, { timeoutMs: 30_000, message: 'the requests to time out' });
    expect(await counter(supervisor, 'rr.failed')).toBe(20);
    // The answers still come, 1.5 s each, one after another: each is late, dropped and counted.
    await waitFor(() => deliveryTotals(supervisor.store).lateReplies >= 3, { timeoutMs: 20_000, message: 'late replies to be counted' });
    const producer = await kafkaForTest().producer();
    await producer.send({
      topic: replyTopicFor(clientId, 'requester/producer/0'),
      messages: [{ value: '{"stray":true}', headers: { 'correlation-id': 'nobody-asked' } }, { value: 'not even json' }],
    });
    await waitFor(() => deliveryTotals(supervisor.store).unknownReplies === 2, { message: 'the unknown replies to be counted' });
    expect(deliveryTotals(supervisor.store)).toMatchObject({ replies: 0, timeouts: 20 });
    expect(supervisor.status().workers.every((w) => w.state === 'ready' && w.restarts === 0)).toBe(true);
  });
});
