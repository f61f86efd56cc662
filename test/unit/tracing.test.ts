import { context, ProxyTracer, ProxyTracerProvider, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseTraceparent } from '../../src/kafka/trace.js';
import { createLogger } from '../../src/log.js';
import type { InboundMessage, RoleContext, SendOptions } from '../../src/service.js';
import { createStateClient } from '../../src/state/client.js';
import { createStateStore } from '../../src/state/store.js';
import { activeTracer, resolveTracer } from '../../src/tracing.js';
import { runHandler } from '../../src/worker/context.js';

const INBOUND_TRACE = '0af7651916cd43dd8448eb211c80319c';
const message: InboundMessage = {
  value: { n: 1 },
  key: 'k',
  headers: {
    'reply-to': 'answers',
    'correlation-id': 'c-1',
    'message-id': 'm-1',
    attempt: '1',
    traceparent: `00-${INBOUND_TRACE}-b7ad6b7169203331-01`,
  },
  topic: 'questions',
  partition: 3,
  offset: '41',
  timestamp: '0',
};

/** A role context whose sends and requests record their headers, with a real state store behind it. */
function role() {
  const store = createStateStore();
  const state = createStateClient(store.connect('svc/consumer/0'));
  const sent: { topic: string; options?: SendOptions }[] = [];
  const base: RoleContext = {
    service: 'svc',
    role: 'consumer',
    workerId: 'svc/consumer/0',
    log: createLogger({ level: 'silent' }),
    options: {},
    state,
    send: async (topic, _value, options) => void sent.push({ topic, options }),
    request: async <R>(topic: string, _value: unknown, options?: SendOptions) => {
      sent.push({ topic, options });
      return undefined as R;
    },
  };
  const close = () => {
    state.close();
    store.close();
  };
  return { base, sent, close };
}

/** A handler that does all a handler can: send, request, reply, shared-state calls. */
async function handler(_message: InboundMessage, ctx: Parameters<Parameters<typeof runHandler>[0]>[1]) {
  await ctx.state.map('m').set('a', 1);
  await ctx.send('out', { ok: true });
  await ctx.request('elsewhere', { q: 1 });
  await ctx.reply({ a: 1 });
}

afterEach(() => {
  trace.disable();
  context.disable();
  resolveTracer();
  vi.restoreAllMocks();
});

describe('traces without an SDK', () => {
  it('find no tracer, call no OpenTelemetry API on the hot path and keep the traceparent of today', async () => {
    expect(resolveTracer()).toBeUndefined();
    expect(activeTracer()).toBeUndefined();
    // Every way a span (no-op or not) could come to exist.
    const spies = [
      vi.spyOn(trace, 'getTracerProvider'),
      vi.spyOn(trace, 'getTracer'),
      vi.spyOn(trace, 'setSpan'),
      vi.spyOn(trace, 'setSpanContext'),
      vi.spyOn(trace, 'wrapSpanContext'),
      vi.spyOn(context, 'with'),
      vi.spyOn(context, 'active'),
      vi.spyOn(ProxyTracer.prototype, 'startSpan'),
      vi.spyOn(ProxyTracer.prototype, 'startActiveSpan'),
      vi.spyOn(ProxyTracerProvider.prototype, 'getTracer'),
    ];
    const { base, sent, close } = role();
    try {
      for (let i = 0; i < 3; i++) await runHandler(handler, base, message, 'group');
    } finally {
      close();
    }
    expect(spies.map((spy) => spy.mock.calls.length)).toEqual(spies.map(() => 0));
    // Sends descend from the inbound message as before: same trace, a new parent id each.
    const parents = sent.map(({ options }) => parseTraceparent(options?.headers?.traceparent));
    expect(parents).toHaveLength(9);
    expect(parents.every((p) => p?.traceId === INBOUND_TRACE && p.parentId !== 'b7ad6b7169203331')).toBe(true);
    expect(new Set(parents.map((p) => p?.parentId)).size).toBe(9);
  });
});

describe('traces with an SDK registered', () => {
  it('run the handler in a process span whose sends, requests, reply and state calls are its children', async () => {
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    expect(resolveTracer()).toBeDefined();
    const { base, sent, close } = role();
    try {
      await runHandler(handler, base, message, 'group');
      await expect(
        runHandler(() => Promise.reject(Object.assign(new Error('no'), { code: 'ERR_X' })), base, message, 'group'),
      ).rejects.toThrow('no');
    } finally {
      close();
    }
    const [stateCall, passed, failed] = exporter.getFinishedSpans();
    expect(passed).toMatchObject({
      name: 'process questions',
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'process',
        'messaging.consumer.group.name': 'group',
        'messaging.destination.partition.id': '3',
        'messaging.kafka.offset': 41,
        'messaging.kafka.message.key': 'k',
        'messaging.message.id': 'm-1',
      },
    });
    expect(passed!.spanContext().traceId).toBe(INBOUND_TRACE);
    expect(passed!.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(passed!.links.map((l) => l.context.spanId)).toEqual(['b7ad6b7169203331']);
    // What the handler sends names the process span as its parent (the sender makes the send span its child).
    expect(sent.map(({ options }) => parseTraceparent(options?.headers?.traceparent)?.parentId)).toEqual([
      passed!.spanContext().spanId,
      passed!.spanContext().spanId,
      passed!.spanContext().spanId,
    ]);
    expect(stateCall).toMatchObject({ name: 'state map.set', kind: SpanKind.CLIENT, attributes: { 'wharf.state.name': 'm' } });
    expect(stateCall!.parentSpanContext?.spanId).toBe(passed!.spanContext().spanId);
    expect(failed).toMatchObject({ name: 'process questions', status: { code: 2 }, attributes: { 'error.type': 'ERR_X' } });
  });
});

describe("the config's tracing.module", () => {
  const services = [{ module: 'service.js' }];
  it('resolves against the config file and must be an existing compiled module', () => {
    const here = resolve(__dirname, '..', 'fixtures', 'tracing');
    expect(parseConfig({ services, tracing: { module: './spans-to-file.mjs' } }, 'test', here).tracing).toEqual({
      module: join(here, 'spans-to-file.mjs'),
    });
    expect(parseConfig({ services }, 'test', here).tracing).toBeUndefined();
    expect(() => parseConfig({ services, tracing: { module: './missing.mjs' } }, 'test', here)).toThrow(
      `Invalid config: tracing.module ${join(here, 'missing.mjs')} does not exist (paths are relative to the config file).`,
    );
    expect(() => parseConfig({ services, tracing: { module: './otel.ts' } }, 'test', here)).toThrow(
      `Invalid config: tracing.module must be a compiled .js or .mjs file, got ${join(here, 'otel.ts')}.`,
    );
    expect(() => parseConfig({ services, tracing: { module: '' } }, 'test', here)).toThrow(/tracing\.module/);
  });
});
