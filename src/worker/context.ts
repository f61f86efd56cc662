import { context, trace, type Tracer } from '@opentelemetry/api';
import { WharfError } from '../errors.js';
import { HEADERS } from '../kafka/codec.js';
import type { Requester } from '../kafka/request-reply.js';
import type { Handled, Started, UnderwaySends } from '../kafka/partition-lane.js';
import type { Sender } from '../kafka/sender.js';
import { startProcessSpan, traceparentOf } from '../kafka/spans.js';
import { childTraceparent } from '../kafka/trace.js';
import type { Logger } from '../log.js';
import type { WorkerData } from '../protocol.js';
import type { InboundMessage, MessageContext, RequestOptions, RoleContext, SendOptions } from '../service.js';
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

type Handler = (message: InboundMessage, ctx: MessageContext) => Promise<void> | void;

/**
 * Runs a service's handler on one message, and returns only once every send and reply it started
 * was acknowledged — also those it did not await. A message is finished (and its offset may be
 * committed) only then, so a forgotten `await` cannot commit past a send that fails later. A send
 * that failed fails the attempt, which is retried and, out of attempts, parked like any other —
 * even if the handler caught the error: what a handler sends is part of handling its message, as
 * in Kafka Streams. Requests are not waited for: their answer is the handler's to await.
 */
export async function runHandler(handler: Handler, base: RoleContext, message: InboundMessage, consumerGroup = ''): Promise<void> {
  const tracer = activeTracer();
  if (tracer) return tracedRun(tracer, handler, base, message, consumerGroup);
  const sends = new MessageSends(false);
  await handler(message, messageContext(base, message, sends));
  // Whatever is still underway was not awaited: it belongs to the message all the same.
  await sends.settled();
  sends.throwIfFailed();
}

/** runHandler in a `process {topic}` span, the parent of what the handler sends and (with a context manager) of its state calls. */
async function tracedRun(tracer: Tracer, handler: Handler, base: RoleContext, message: InboundMessage, consumerGroup: string) {
  const span = startProcessSpan(tracer, message, consumerGroup);
  const sends = new MessageSends(false);
  try {
    const ctx = messageContext(base, message, sends, traceparentOf(span));
    await context.with(trace.setSpan(context.active(), span), () => handler(message, ctx));
    await sends.settled();
    sends.throwIfFailed();
  } catch (error) {
    failSpan(span, error);
    throw error;
  }
  span.end();
}

/**
 * runHandler for a lane that pipelines sends (`consumes.pipelineSends`): done once the handler
 * returned, with the sends and reply it started still under way — `settled` resolves once every
 * one was acknowledged and rejects with the first that failed. Meanwhile `await ctx.send` and
 * `await ctx.reply` resolve once the value is queued on the producer; the lane finishes the
 * message (its offset may be committed) only once they settle (src/kafka/partition-lane.ts).
 * Traced, it runs as runHandler: a process span ends when its sends are acknowledged.
 *
 * Not async: this runs for every message. The lane waits on the handler's own promise and then
 * asks the MessageSends, which is the Started: no promise of wharf's for the message.
 */
export function startHandler(handler: Handler, base: RoleContext, message: InboundMessage, consumerGroup = ''): Started {
  if (activeTracer()) return awaited(runHandler(handler, base, message, consumerGroup));
  const sends = new MessageSends(true);
  const returned: unknown = handler(message, messageContext(base, message, sends));
  // Another library's thenable: made a native promise, which is what the lane waits on.
  sends.returned = !(returned instanceof Promise) && isThenable(returned) ? Promise.resolve(returned) : returned;
  return sends;
}

/** A Started for a run that resolves once its message is handled (runHandler): nothing is left under way. */
export function awaited(run: Promise<void>): Started {
  return { returned: run, underway: nothingUnderway };
}

const nothingUnderway = (): Handled => undefined;

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';

const QUEUED: Promise<void> = Promise.resolve();

/**
 * What one message's handler sent: how many sends are not settled yet, and the first that failed.
 * A class, not a closure per field: one is made for every message. Pipelined, it is also the
 * handler's Started (what the handler returned, and `underway`) that the lane holds.
 */
export class MessageSends implements Started {
  #pending = 0;
  #failed: { error: unknown } | undefined;
  #idle: (() => void)[] | undefined;
  returned: unknown = undefined;

  /** `pipelined`: sends resolve once queued, not acknowledged (startHandler). */
  constructor(readonly pipelined: boolean) {}

  /** Counts a send of this message; gives what the handler's `await` of it waits for. */
  track(sending: Promise<void>): Promise<void> {
    this.#pending++;
    sending.then(
      () => this.#settle(),
      (error: unknown) => {
        this.#failed ??= { error };
        this.#settle();
      },
    );
    return this.pipelined ? QUEUED : sending;
  }

  /** Resolves once no send is under way (at once when none is). */
  settled(): Promise<void> | undefined {
    if (this.#pending === 0) return undefined;
    return new Promise((resolve) => (this.#idle ??= []).push(resolve));
  }

  /** Throws the first send's failure, if one failed. */
  throwIfFailed(): void {
    if (this.#failed) throw this.#failed.error;
  }

  /** After a pipelined handler returned: the sends still under way, or nothing when all settled (throws if one failed). */
  underway(): UnderwaySends | undefined {
    this.throwIfFailed();
    const settled = this.settled();
    if (!settled) return undefined;
    return { settled: settled.then(() => this.throwIfFailed()) };
  }

  #settle(): void {
    if (--this.#pending > 0 || !this.#idle) return;
    const waiting = this.#idle;
    this.#idle = undefined;
    for (const resolve of waiting) resolve();
  }
}

/**
 * A handler's `ctx`: everything it sends — sends, requests, the reply — carries a child of the
 * inbound message's traceparent, so the work it causes joins the message's trace; when traced,
 * `parent` (the process span's traceparent), of which the sender makes the send span's child.
 * Sends and the reply are recorded in `sends` (see runHandler).
 */
export function messageContext(base: RoleContext, message: InboundMessage, sends?: MessageSends, parent?: string): MessageContext {
  return new HandlerContext(base, message, sends, parent);
}

/**
 * One is made for every message, so it is a class: `send`, `request` and `reply` are methods on
 * its prototype (as MessageContext declares them), not closures made anew for each message.
 */
class HandlerContext implements MessageContext {
  readonly service: string;
  readonly role: RoleContext['role'];
  readonly workerId: string;
  readonly log: RoleContext['log'];
  readonly options: RoleContext['options'];
  readonly state: SharedState;
  readonly value: unknown;
  readonly key: string | null;
  readonly headers: Record<string, string>;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: string;
  readonly #base: RoleContext;
  readonly #sends: MessageSends | undefined;
  readonly #parent: string | undefined;

  constructor(base: RoleContext, message: InboundMessage, sends: MessageSends | undefined, parent: string | undefined) {
    this.service = base.service;
    this.role = base.role;
    this.workerId = base.workerId;
    this.log = base.log;
    this.options = base.options;
    this.state = base.state;
    this.value = message.value;
    this.key = message.key;
    this.headers = message.headers;
    this.topic = message.topic;
    this.partition = message.partition;
    this.offset = message.offset;
    this.timestamp = message.timestamp;
    this.#base = base;
    this.#sends = sends;
    this.#parent = parent;
  }

  send(topic: string, value: unknown, options: SendOptions = {}): Promise<void> {
    return this.#track(this.#base.send(topic, value, { ...options, headers: this.#traced(options.headers) }));
  }

  request<R = unknown>(topic: string, value: unknown, options: RequestOptions<R> = {}): Promise<R> {
    return this.#base.request(topic, value, { ...options, headers: this.#traced(options.headers) });
  }

  reply(value: unknown, options: Omit<SendOptions, 'partition'> = {}): Promise<void> {
    const replyTo = this.headers[HEADERS.replyTo];
    if (!replyTo) {
      return Promise.reject(
        new WharfError(
          'ERR_NO_REPLY_TO',
          `Message ${this.topic}/${this.partition}@${this.offset} has no ${HEADERS.replyTo} header: answer it with ctx.send(topic, value).`,
        ),
      );
    }
    const correlationId = this.headers[HEADERS.correlationId] ?? this.headers[HEADERS.messageId];
    return this.#track(
      this.#base.send(replyTo, value, {
        key: options.key === undefined ? this.key : options.key,
        codec: options.codec,
        headers: this.#traced({ ...(correlationId ? { [HEADERS.correlationId]: correlationId } : {}), ...options.headers }),
      }),
    );
  }

  #traced(headers: Record<string, string> = {}): Record<string, string> {
    return { [HEADERS.traceparent]: this.#parent ?? childTraceparent(this.headers[HEADERS.traceparent]), ...headers };
  }

  #track(sending: Promise<void>): Promise<void> {
    return this.#sends ? this.#sends.track(sending) : sending;
  }
}
