import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { describe, expect, it, onTestFinished } from 'vitest';
import { replyTopicFor } from '../../src/kafka/request-reply.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startWharfForTest, uniqueName, waitFor } from '../helpers.js';

/**
 * Traces across threads and services: the workers register an SDK through the config's
 * `tracing.module` (test/fixtures/tracing/spans-to-file.mjs), whose in-memory exporter in each
 * thread also writes the spans to a file of that thread; the test reads their union.
 */
const TRACING_MODULE = resolve(__dirname, '..', 'fixtures', 'tracing', 'spans-to-file.mjs');

interface SpanRecord {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  links: string[];
  attributes: Record<string, unknown>;
  status: number;
  service: string;
  workerId: string;
  thread: 'worker' | 'pool';
}

function spansDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-spans-'));
  process.env.WHARF_TEST_SPANS_DIR = dir;
  onTestFinished(() => {
    delete process.env.WHARF_TEST_SPANS_DIR;
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function readSpans(dir: string): SpanRecord[] {
  return readdirSync(dir).flatMap((file) =>
    readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as SpanRecord),
  );
}

/** Tony's request, Jarvis's process span and the reply: one trace, each span the child of the one before. */
function exchange(spans: SpanRecord[], requests: string, replies: string) {
  for (const request of spans.filter((s) => s.name === `request ${requests}`)) {
    const trace = spans.filter((s) => s.traceId === request.traceId);
    const child = (parent: SpanRecord | undefined, name: string) =>
      parent && trace.find((s) => s.parentSpanId === parent.spanId && s.name === name);
    const send = child(request, `send ${requests}`);
    const process = child(send, `process ${requests}`);
    const reply = child(process, `send ${replies}`);
    const received = child(reply, `process ${replies}`);
    if (received) return { request, send: send!, process: process!, reply: reply!, received, trace };
  }
  return undefined;
}

describe('traces', () => {
  it.each([
    ['in its consumer workers', {}],
    ['in a thread pool', { concurrency: { mode: 'unordered', threads: 2 } }],
  ])(
    "follow one request from Tony through Jarvis (%s) and back as one trace, with the messaging conventions' attributes",
    { timeout: 120_000 },
    async (_where, delivery) => {
      const dir = spansDir();
      const admin = await kafkaForTest().admin();
      const requests = await createTopic(admin, uniqueName('requests'), 2);
      const group = uniqueName('jarvis');
      const clientId = uniqueName('wharf');
      await startWharfForTest({
        services: [
          { module: SERVICE_MODULES.jarvis, workers: { consumer: 1 }, consumes: { topics: [requests], groupId: group, ...delivery } },
          { module: SERVICE_MODULES.tony, workers: { producer: 1 }, rate: 5, options: { requests, timeoutMs: 30_000 } },
        ],
        kafka: { clientId },
        tracing: { module: TRACING_MODULE },
      });
      const replies = replyTopicFor(clientId, 'tony/producer/0');

      const found = await waitFor(() => exchange(readSpans(dir), requests, replies), {
        timeoutMs: 60_000,
        message: 'a request, its process span and the reply in one trace',
      });
      const { request, send, process, reply, received } = found;

      // Across services and threads: Tony's worker, Jarvis's worker (or pool thread), Tony again.
      expect([request, send, process, reply, received].map((s) => [s.service, s.kind])).toEqual([
        ['tony', SpanKind.CLIENT],
        ['tony', SpanKind.PRODUCER],
        ['jarvis', SpanKind.CONSUMER],
        ['jarvis', SpanKind.PRODUCER],
        ['tony', SpanKind.CONSUMER],
      ]);
      expect(process.thread).toBe('concurrency' in delivery ? 'pool' : 'worker');
      expect(request.parentSpanId, 'the request starts the trace').toBeNull();
      expect(process.links, 'the process span links to the producer').toEqual([send.spanId]);
      expect(received.links).toEqual([reply.spanId]);

      const conversation = request.attributes['messaging.message.conversation_id'];
      expect(conversation).toEqual(expect.any(String));
      expect(send.attributes).toMatchObject({
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': requests,
        'messaging.message.conversation_id': conversation,
        'messaging.message.id': expect.any(String),
        'messaging.kafka.message.key': expect.stringMatching(/^\d+$/),
      });
      expect(process.attributes).toEqual({
        'messaging.system': 'kafka',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': requests,
        'messaging.consumer.group.name': group,
        'messaging.destination.partition.id': expect.stringMatching(/^[01]$/),
        'messaging.kafka.offset': expect.any(Number),
        'messaging.kafka.message.key': send.attributes['messaging.kafka.message.key'],
        'messaging.message.id': send.attributes['messaging.message.id'],
        'messaging.message.conversation_id': conversation,
        'wharf.delivery.attempt': 1,
      });
      expect(reply.attributes).toMatchObject({ 'messaging.destination.name': replies, 'messaging.message.conversation_id': conversation });
      expect(received.attributes).toMatchObject({
        'messaging.operation.type': 'process',
        'messaging.destination.name': replies,
        'messaging.message.id': reply.attributes['messaging.message.id'],
      });

      // Jarvis's worker commits what it handled: a `commit` span of its group.
      await waitFor(() => readSpans(dir).some((s) => s.name === 'commit' && s.attributes['messaging.consumer.group.name'] === group), {
        message: "a commit span of Jarvis's group",
      });
      const commit = readSpans(dir).find((s) => s.name === 'commit' && s.attributes['messaging.consumer.group.name'] === group)!;
      expect(commit).toMatchObject({
        service: 'jarvis',
        kind: SpanKind.CLIENT,
        attributes: { 'messaging.system': 'kafka', 'messaging.operation.type': 'settle', 'messaging.operation.name': 'commit' },
      });
    },
  );

  it('marks a failed handler run with error.type, and traces the state calls a handler makes', { timeout: 120_000 }, async () => {
    const dir = spansDir();
    const { admin, producer } = kafkaForTest();
    const topic = await createTopic(await admin(), uniqueName('flaky'), 1);
    await startWharfForTest({
      services: [
        {
          module: SERVICE_MODULES.fixture('flaky'),
          consumes: { topics: [topic], groupId: uniqueName('flaky'), retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 10 } },
          options: { every: 1, failFirst: 1 },
        },
      ],
      tracing: { module: TRACING_MODULE },
    });
    await (await producer()).send({ topic, messages: [{ key: 'k0', value: JSON.stringify({ i: 7 }) }] });

    const attempts = await waitFor(
      () => {
        const spans = readSpans(dir).filter((s) => s.name === `process ${topic}`);
        return spans.length >= 2 ? spans : undefined;
      },
      { message: 'two attempts of the message' },
    );
    const failed = attempts.find((s) => s.attributes['wharf.delivery.attempt'] === 1)!;
    const passed = attempts.find((s) => s.attributes['wharf.delivery.attempt'] === 2)!;
    expect(failed).toMatchObject({ status: 2, attributes: { 'error.type': 'Error', 'messaging.kafka.message.key': 'k0' } });
    expect(passed.status).not.toBe(2);
    expect(passed.attributes['error.type']).toBeUndefined();
    // A message without a traceparent (sent by kafkajs directly) starts a trace of its own.
    expect(failed.parentSpanId).toBeNull();

    // Its state calls (`handled` map: has, set) are children of the passing attempt's span.
    const state = await waitFor(
      () => {
        const calls = readSpans(dir).filter((s) => s.parentSpanId === passed.spanId && s.name.startsWith('state '));
        return calls.length > 0 ? calls : undefined;
      },
      { message: 'state spans under the process span' },
    );
    expect(state.map((s) => s.name)).toContain('state map.set');
    expect(state.find((s) => s.name === 'state map.set')).toMatchObject({
      kind: SpanKind.CLIENT,
      traceId: passed.traceId,
      attributes: { 'wharf.state.kind': 'map', 'wharf.state.name': 'handled', 'wharf.state.operation': 'set' },
    });
  });
});
