import { context, trace, type Tracer } from '@opentelemetry/api';
import { WharfError } from '../errors.js';
import { HEADERS } from '../kafka/codec.js';
import type { Requester } from '../kafka/request-reply.js';
import type { UnderwaySends } from '../kafka/partition-lane.js';
import type { Sender } from '../kafka/sender.js';
import { startProcessSpan, traceparentOf } from '../kafka/spans.js';
import { childTraceparent } from '../kafka/trace.js';
import type { Logger } from '../log.js';
import type { WorkerData } from '../protocol.js';
import type { InboundMessage, MessageContext, RoleContext } from '../service.js';
import type { SharedState } from '../state/client.js';
import type { Role } from '../status.js';
import { activeTracer, failSpan } from '../tracing.js';

export interface RoleContextParts {
  /** Who runs the role: a worker's WorkerData, or a pool thread's data with the same fields. */
  data: Pick<WorkerData, 'service' | 'workerId' | 'options'>;
  role: Role;
  logger: Logger;
  state: SharedState;
  sender: Pick<Sender, 'send'>;
  requester: Pick<Requester, 'request'>;
}

/** The part of a handler's `ctx` that is the same for every message of a worker. */
export function roleContext({ data, role, logger, state, sender, requester }: RoleContextParts): RoleContext {
  return {
    service: data.service,
    role,
    workerId: data.workerId,
    log: logger,
    options: data.options,
    state,
    send: (topic, value, options) => sender.send(topic, value, options),
    request: (topic, value, options) => requester.request(topic, value, options),
  };
}

/**
 * Runs a service's handler on one message, and returns only once every send and reply it started
 * was acknowledged — also those it did not await. A message is finished (and its offset may be
 * committed) only then, so a forgotten `await` cannot commit past a send that fails later. A send
 * that failed fails the attempt, which is retried and, out of attempts, parked like any other —
 * even if the handler caught the error: what a handler sends is part of handling its message, as
 * in Kafka Streams. Requests are not waited for: their answer is the handler's to await.
 */
export async function runHandler(
  handler: (message: InboundMessage, ctx: MessageContext) => Promise<void> | void,
  base: RoleContext,
  message: InboundMessage,
  consumerGroup = '',
): Promise<void> {
  const tracer = activeTracer();
  if (tracer) return tracedRun(tracer, handler, base, message, consumerGroup);
  const sends: MessageSends = { underway: new Set(), failed: undefined };
  await handler(message, messageContext(base, message, sends));
  // Whatever is still underway was not awaited: it belongs to the message all the same.
  if (sends.underway.size > 0) await Promise.allSettled(sends.underway);
  if (sends.failed) throw sends.failed.error;
}

/** runHandler in a `process {topic}` span, the parent of what the handler sends and (with a context manager) of its state calls. */
async function tracedRun(
  tracer: Tracer,
  handler: Parameters<typeof runHandler>[0],
  base: RoleContext,
  message: InboundMessage,
  consumerGroup: string,
) {
  const span = startProcessSpan(tracer, message, consumerGroup);
  const sends: MessageSends = { underway: new Set(), failed: undefined };
  try {
    const ctx = messageContext(base, message, sends, traceparentOf(span));
    await context.with(trace.setSpan(context.active(), span), () => handler(message, ctx));
    if (sends.underway.size > 0) await Promise.allSettled(sends.underway);
    if (sends.failed) throw sends.failed.error;
  } catch (error) {
    failSpan(span, error);
    throw error;
  }
  span.end();
}

/**
 * runHandler for a lane that pipelines sends (`consumes.pipelineSends`): returns once the handler
 * returned, with the sends and reply it started still under way — `settled` resolves once every
 * one was acknowledged and rejects with the first that failed. Meanwhile `await ctx.send` and
 * `await ctx.reply` resolve once the value is queued on the producer; the lane finishes the
 * message (its offset may be committed) only once they settle (src/kafka/partition-lane.ts).
 * Traced, it runs as runHandler: a process span ends when its sends are acknowledged.
 */
export async function startHandler(
  handler: Parameters<typeof runHandler>[0],
  base: RoleContext,
  message: InboundMessage,
  consumerGroup = '',
): Promise<UnderwaySends | undefined> {
  if (activeTracer()) return void (await runHandler(handler, base, message, consumerGroup));
  const sends: MessageSends = { underway: new Set(), failed: undefined, pipelined: true };
  await handler(message, messageContext(base, message, sends));
  if (sends.failed) throw sends.failed.error;
  if (sends.underway.size === 0) return undefined;
  return {
    settled: Promise.allSettled(sends.underway).then(() => {
      if (sends.failed) throw sends.failed.error;
    }),
  };
}

/** What one message's handler sent: the sends not yet settled, and the first that failed. */
export interface MessageSends {
  underway: Set<Promise<void>>;
  failed: { error: unknown } | undefined;
  /** Sends resolve once queued, not acknowledged (startHandler). */
  pipelined?: boolean;
}

const QUEUED: Promise<void> = Promise.resolve();

/**
 * A handler's `ctx`: everything it sends — sends, requests, the reply — carries a child of the
 * inbound message's traceparent, so the work it causes joins the message's trace; when traced,
 * `parent` (the process span's traceparent), of which the sender makes the send span's child.
 * Sends and the reply are recorded in `sends` (see runHandler).
 */
export function messageContext(base: RoleContext, message: InboundMessage, sends?: MessageSends, parent?: string): MessageContext {
  const inbound = message.headers[HEADERS.traceparent];
  const traced = (headers: Record<string, string> = {}) => ({ [HEADERS.traceparent]: parent ?? childTraceparent(inbound), ...headers });
  const track = (sending: Promise<void>): Promise<void> => {
    if (!sends) return sending;
    sends.underway.add(sending);
    sending.then(
      () => sends.underway.delete(sending),
      (error: unknown) => {
        sends.underway.delete(sending);
        sends.failed ??= { error };
      },
    );
    return sends.pipelined ? QUEUED : sending;
  };
  // Written out rather than spread: this runs for every message, and a literal of one shape is cheap.
  return {
    service: base.service,
    role: base.role,
    workerId: base.workerId,
    log: base.log,
    options: base.options,
    state: base.state,
    value: message.value,
    key: message.key,
    headers: message.headers,
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp,
    send: (topic, value, options = {}) => track(base.send(topic, value, { ...options, headers: traced(options.headers) })),
    request: (topic, value, options = {}) => base.request(topic, value, { ...options, headers: traced(options.headers) }),
    reply(value, options = {}) {
      const replyTo = message.headers[HEADERS.replyTo];
      if (!replyTo) {
        return Promise.reject(
          new WharfError(
            'ERR_NO_REPLY_TO',
            `Message ${message.topic}/${message.partition}@${message.offset} has no ${HEADERS.replyTo} header: answer it with ctx.send(topic, value).`,
          ),
        );
      }
      const correlationId = message.headers[HEADERS.correlationId] ?? message.headers[HEADERS.messageId];
      return track(
        base.send(replyTo, value, {
          key: options.key === undefined ? message.key : options.key,
          codec: options.codec,
          headers: traced({ ...(correlationId ? { [HEADERS.correlationId]: correlationId } : {}), ...options.headers }),
        }),
      );
    },
  };
}
