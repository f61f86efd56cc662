import { context, ROOT_CONTEXT, SpanKind, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { HEADERS } from './codec.js';
import type { InboundMessage } from './message.js';
import type { PartitionOffset } from './offset-committer.js';
import { formatTraceparent, parseTraceparent } from './trace.js';

/**
 * The messaging spans of the OpenTelemetry semantic conventions (messaging, Kafka): `send {topic}`
 * (PRODUCER), `process {topic}` (CONSUMER), `commit` (settle), and wharf's `request {topic}`
 * (CLIENT, ctx.request waiting for its reply). Made only when a tracer is active (src/tracing.ts);
 * the W3C `traceparent` header every message carries is their propagation: a send's header names
 * its send span, and a process span is the child of, and links to, the send span its message names.
 */

/** The span a `traceparent` header names, as a remote parent; undefined when missing or not valid. */
export function contextFromTraceparent(header: string | undefined): Context | undefined {
  const parsed = parseTraceparent(header);
  if (!parsed) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parsed.traceId,
    spanId: parsed.parentId,
    traceFlags: parseInt(parsed.flags, 16),
    isRemote: true,
  });
}

/** The `traceparent` header naming `span`. */
export function traceparentOf(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return formatTraceparent({ traceId, parentId: spanId, flags: (traceFlags & 0xff).toString(16).padStart(2, '0') });
}

function messageAttributes(
  operation: 'send' | 'process',
  topic: string,
  key: string | Buffer | null | undefined,
  headers: Record<string, string>,
): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': operation,
    'messaging.operation.name': operation,
    'messaging.destination.name': topic,
  };
  if (typeof key === 'string') attributes['messaging.kafka.message.key'] = key;
  const messageId = headers[HEADERS.messageId];
  if (messageId) attributes['messaging.message.id'] = messageId;
  const correlationId = headers[HEADERS.correlationId];
  if (correlationId) attributes['messaging.message.conversation_id'] = correlationId;
  return attributes;
}

/**
 * A send's PRODUCER span. Its parent is the span the caller's `traceparent` names (the handler's
 * process span, a request span), else the active span; `headers` are the message's as sent.
 */
export function startSendSpan(
  tracer: Tracer,
  topic: string,
  parent: string | undefined,
  message: { key: string | Buffer | null; partition?: number; headers: Record<string, string> },
): Span {
  const attributes = messageAttributes('send', topic, message.key, message.headers);
  if (message.partition !== undefined) attributes['messaging.destination.partition.id'] = String(message.partition);
  return tracer.startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER, attributes }, contextFromTraceparent(parent) ?? context.active());
}

/**
 * A handler run's (or a reply's) CONSUMER span: the child of the send span the message's
 * `traceparent` names, linked to it as the conventions ask; a message without one starts a trace.
 */
export function startProcessSpan(
  tracer: Tracer,
  message: Pick<InboundMessage, 'topic' | 'partition' | 'offset' | 'key' | 'headers'>,
  consumerGroup: string,
): Span {
  const producer = contextFromTraceparent(message.headers[HEADERS.traceparent]);
  const attributes = messageAttributes('process', message.topic, message.key, message.headers);
  attributes['messaging.consumer.group.name'] = consumerGroup;
  attributes['messaging.destination.partition.id'] = String(message.partition);
  attributes['messaging.kafka.offset'] = Number(message.offset);
  const attempt = Number(message.headers[HEADERS.attempt]);
  if (attempt > 0) attributes['wharf.delivery.attempt'] = attempt;
  const link = producer && trace.getSpanContext(producer);
  return tracer.startSpan(
    `process ${message.topic}`,
    { kind: SpanKind.CONSUMER, attributes, links: link ? [{ context: link }] : [] },
    producer ?? ROOT_CONTEXT,
  );
}

/** ctx.request's CLIENT span, from the send until the reply (or the timeout); parent as startSendSpan's. */
export function startRequestSpan(tracer: Tracer, topic: string, parent: string | undefined, correlationId: string): Span {
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.name': 'request',
    'messaging.destination.name': topic,
    'messaging.message.conversation_id': correlationId,
  };
  return tracer.startSpan(`request ${topic}`, { kind: SpanKind.CLIENT, attributes }, contextFromTraceparent(parent) ?? context.active());
}

/** An offset commit's CLIENT span (a trace of its own: one commit settles many messages). */
export function startCommitSpan(tracer: Tracer, consumerGroup: string, offsets: readonly PartitionOffset[]): Span {
  const topics = new Set(offsets.map((o) => o.topic));
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'settle',
    'messaging.operation.name': 'commit',
    'messaging.consumer.group.name': consumerGroup,
    'wharf.commit.partitions': offsets.length,
  };
  if (topics.size === 1) attributes['messaging.destination.name'] = offsets[0]!.topic;
  return tracer.startSpan('commit', { kind: SpanKind.CLIENT, attributes }, ROOT_CONTEXT);
}
