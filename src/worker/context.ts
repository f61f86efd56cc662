import { WharfError } from '../errors.js';
import { HEADERS } from '../kafka/codec.js';
import type { Requester } from '../kafka/request-reply.js';
import type { Sender } from '../kafka/sender.js';
import { childTraceparent } from '../kafka/trace.js';
import type { Logger } from '../log.js';
import type { WorkerData } from '../protocol.js';
import type { InboundMessage, MessageContext, RoleContext } from '../service.js';
import type { SharedState } from '../state/client.js';
import type { Role } from '../supervisor/status.js';

export interface RoleContextParts {
  data: WorkerData;
  role: Role;
  logger: Logger;
  state: SharedState;
  sender: Sender;
  requester: Requester;
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
 * A handler's `ctx`: everything it sends — sends, requests, the reply — carries a child of the
 * inbound message's traceparent, so the work it causes joins the message's trace.
 */
export function messageContext(base: RoleContext, message: InboundMessage): MessageContext {
  const inbound = message.headers[HEADERS.traceparent];
  const traced = (headers: Record<string, string> = {}) => ({ [HEADERS.traceparent]: childTraceparent(inbound), ...headers });
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
    send: (topic, value, options = {}) => base.send(topic, value, { ...options, headers: traced(options.headers) }),
    request: (topic, value, options = {}) => base.request(topic, value, { ...options, headers: traced(options.headers) }),
    async reply(value, options = {}) {
      const replyTo = message.headers[HEADERS.replyTo];
      if (!replyTo) {
        throw new WharfError('ERR_NO_REPLY_TO', `Message ${message.topic}/${message.partition}@${message.offset} has no ${HEADERS.replyTo} header: answer it with ctx.send(topic, value).`);
      }
      const correlationId = message.headers[HEADERS.correlationId] ?? message.headers[HEADERS.messageId];
      await base.send(replyTo, value, {
        key: options.key === undefined ? message.key : options.key,
        codec: options.codec,
        headers: traced({ ...(correlationId ? { [HEADERS.correlationId]: correlationId } : {}), ...options.headers }),
      });
    },
  };
}
