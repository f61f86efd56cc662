import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startWharf } from '../../src/app/start.js';
import { parseConfig } from '../../src/config/load.js';
import {
  crashOneWorker,
  createTopic,
  kafkaForTest,
  SERVICE_MODULES,
  startWharfForTest,
  testBrokers,
  testLogger,
  uniqueName,
  waitFor,
} from '../helpers.js';
import { parsePrometheusText, type Scrape } from '../prometheus-text.js';

/**
 * GET /metrics from a running supervisor under traffic: the series exist, parse as Prometheus
 * text, and move — consumed, processed, sent, a dead letter per reason, a restart after a worker
 * crash — and a worker's counters do not go back when its thread is replaced. Bad requests get
 * a 4xx and the supervisor keeps serving.
 */

async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  return parsePrometheusText(await response.text());
}

function raw(address: string, bytes: string): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) }, () => socket.write(bytes));
    let answer = '';
    socket.on('data', (d) => (answer += String(d)));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')));
  });
}

describe('/metrics', () => {
  it('counts what every worker thread does, across a crash, in Prometheus text', { timeout: 120_000 }, async () => {
    const k = kafkaForTest();
    const admin = await k.admin();
    const input = await createTopic(admin, uniqueName('metered-in'), 2);
    const forward = await createTopic(admin, uniqueName('metered-out'), 1);
    const group = uniqueName('metered');
    const wharf = await startWharfForTest(
      {
        services: [
          {
            module: SERVICE_MODULES.fixture('metered'),
            workers: { consumer: 2 },
            consumes: { topics: [input], groupId: group, retry: { attempts: 1 } },
            options: { forward },
          },
        ],
        kafka: { clientId: uniqueName('wharf') },
      },
      { admin: true },
    );
    const url = wharf.http!.url;
    // Found where `npm run admin` and other tools look.
    const info = JSON.parse(readFileSync(join(wharf.admin!.connectionFile), 'utf8')) as { http?: string };
    expect(info.http).toBe(wharf.http!.address);

    const first = await scrape(url);
    for (const family of [
      'messaging_client_consumed_messages_total',
      'messaging_client_sent_messages_total',
      'messaging_process_duration_seconds',
      'messaging_client_operation_duration_seconds',
      'wharf_worker_state',
      'wharf_worker_restarts_total',
      'wharf_dead_letters_total',
      'wharf_in_flight_messages',
      'wharf_paused_partitions',
      'wharf_commits_total',
      'wharf_request_timeouts_total',
      'wharf_state_calls_total',
      'wharf_pool_threads',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
    ])
      expect(first.types.has(family), family).toBe(true);
    expect(first.find('wharf_worker_state', { state: 'ready', service: 'metered' }).map((s) => s.value)).toEqual([1, 1]);

    const producer = await k.producer();
    await producer.send({
      topic: input,
      acks: -1,
      messages: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }) })),
    });
    const traffic = await waitFor(
      async () => {
        const s = await scrape(url);
        return s.sum('messaging_client_sent_messages_total', { messaging_destination_name: forward }) >= 40 ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const consumer = { messaging_destination_name: input, messaging_consumer_group_name: group, service: 'metered' };
    expect(traffic.sum('messaging_client_consumed_messages_total', consumer)).toBe(40);
    expect(traffic.sum('messaging_process_duration_seconds_count', consumer)).toBe(40);
    expect(traffic.sum('messaging_process_duration_seconds_sum', consumer)).toBeGreaterThan(0);
    expect(
      traffic.sum('messaging_client_operation_duration_seconds_count', {
        messaging_operation_name: 'send',
        messaging_destination_name: forward,
      }),
    ).toBeGreaterThan(0);
    // The handler's 40, and each worker's publication of its delivery counters (`wharf.delivery`).
    expect(traffic.sum('wharf_state_calls_total', { operation: 'map.set' })).toBeGreaterThanOrEqual(40);
    // Counted each, timed one in 8.
    expect(traffic.sum('wharf_state_call_duration_seconds_count')).toBeGreaterThanOrEqual(5);
    expect(traffic.sum('wharf_state_call_duration_seconds_count')).toBeLessThan(traffic.sum('wharf_state_calls_total'));
    expect(traffic.sum('wharf_handled_messages_total', { service: 'metered' })).toBe(40);
    await waitFor(async () => (await scrape(url)).sum('wharf_commits_total', { service: 'metered' }) > 0, {
      timeoutMs: 30_000,
      intervalMs: 250,
    });

    // A handler's refusal and bytes that are not JSON: a dead letter each, by reason.
    await producer.send({
      topic: input,
      acks: -1,
      messages: [
        { key: 'bad', value: JSON.stringify({ fail: true }) },
        { key: 'bad', value: '{"not json' },
      ],
    });
    const parked = await waitFor(
      async () => {
        const s = await scrape(url);
        return s.sum('wharf_dead_letters_total', consumer) >= 2 ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(parked.sum('wharf_dead_letters_total', { ...consumer, reason: 'ERR_METERED_BAD' })).toBe(1);
    expect(parked.sum('wharf_dead_letters_total', { ...consumer, reason: 'ERR_DECODE' })).toBe(1);

    // A worker crash: its slot restarts, and its counters carry on from where they were.
    const before = parked.find('messaging_client_consumed_messages_total', consumer);
    const workerId = await crashOneWorker(wharf, producer, input);
    await wharf.supervisor.events.once('worker:ready', (p) => p.workerId === workerId);
    const after = await scrape(url);
    expect(after.sum('wharf_worker_restarts_total', { worker: workerId })).toBe(1);
    for (const { labels, value } of before)
      expect(after.sum('messaging_client_consumed_messages_total', labels), labels.worker).toBeGreaterThanOrEqual(value);
    await producer.send({
      topic: input,
      acks: -1,
      messages: Array.from({ length: 20 }, (_, i) => ({ key: `again${i}`, value: JSON.stringify({ i }) })),
    });
    await waitFor(
      async () => (await scrape(url)).sum('messaging_client_sent_messages_total', { messaging_destination_name: forward }) >= 60,
      { timeoutMs: 60_000, intervalMs: 250 },
    );

    // Bad requests: 4xx, and the supervisor serves on.
    expect((await fetch(`${url}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(`${url}/metrics/../admin`)).status).toBe(404);
    expect((await fetch(`${url}/nothing-here`)).status).toBe(404);
    expect(await raw(wharf.http!.address, '\x00\x01garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(wharf.http!.address, `GET /metrics HTTP/1.1\r\nHost: x\r\n${'X-Long: y\r\n'.repeat(5_000)}\r\n`)).toMatch(
      /^HTTP\/1\.1 431 /,
    );
    expect((await scrape(url)).find('wharf_worker_state', { state: 'ready', service: 'metered' })).toHaveLength(2);
  });

  it('is not counted at all with the listener off', { timeout: 90_000 }, async () => {
    const k = kafkaForTest();
    const input = await createTopic(await k.admin(), uniqueName('unmetered-in'), 1);
    const forward = await createTopic(await k.admin(), uniqueName('unmetered-out'), 1);
    const logger = testLogger();
    const wharf = await startWharf({
      config: parseConfig(
        {
          services: [
            {
              module: SERVICE_MODULES.fixture('metered'),
              consumes: { topics: [input], groupId: uniqueName('unmetered') },
              options: { forward },
            },
          ],
          supervisor: { heartbeatIntervalMs: 200, drainTimeoutMs: 15_000 },
          kafka: { sessionTimeoutMs: 6_000, clientId: uniqueName('wharf') },
          http: 'off',
        },
        'test',
        process.cwd(),
      ),
      brokers: testBrokers(),
      logger,
      env: {},
      admin: false,
      print: (line) => logger.debug(line),
    });
    onTestFinished(() => wharf.stop().then(() => undefined));
    expect(wharf.http).toBeNull();
    const producer = await k.producer();
    await producer.send({ topic: input, acks: -1, messages: Array.from({ length: 5 }, (_, i) => ({ value: JSON.stringify({ i }) })) });
    await waitFor(() => wharf.supervisor.status().workers.reduce((sum, w) => sum + w.handled, 0) >= 5, { timeoutMs: 60_000 });
    // Heartbeats came (the handled count travels with them), and carried no counts.
    for (const w of wharf.supervisor.metrics()) {
      expect(w.thread.consumed).toEqual({});
      expect(w.thread.sent).toEqual({});
      expect(w.thread.stateCalls).toEqual({});
    }
  });
});
