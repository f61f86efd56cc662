import { WharfError } from '../errors.js';
import { HEADERS } from '../kafka/codec.js';
import type { Sender } from '../kafka/sender.js';
import type { Logger } from '../log.js';
import type { WorkerData } from '../protocol.js';
import type { InboundMessage, MessageContext, RoleContext } from '../service.js';
import type { SharedState } from '../state/client.js';
import type { Role } from '../supervisor/status.js';

/** The part of a handler's `ctx` that is the same for every message of a worker. */
export function roleContext({ data, role, logger, state, sender }: { data: WorkerData; role: Role; logger: Logger; state: SharedState; sender: Sender }): RoleContext {
  return {
    service: data.service,
    role,
    workerId: data.workerId,
    log: logger,
    options: data.options,
    state,
    send: (topic, value, options) => sender.send(topic, value, options),
  };
}

export function messageContext(base: RoleContext, message: InboundMessage): MessageContext {
  return {
    ...base,
    ...message,
    async reply(value, options = {}) {
      const replyTo = message.headers[HEADERS.replyTo];
      if (!replyTo) {
        throw new WharfError('ERR_NO_REPLY_TO', `Message ${message.topic}/${message.partition}@${message.offset} has no ${HEADERS.replyTo} header: answer it with ctx.send(topic, value).`);
      }
      const correlationId = message.headers[HEADERS.correlationId] ?? message.headers[HEADERS.messageId];
      await base.send(replyTo, value, {
        key: options.key === undefined ? message.key : options.key,
        headers: { ...(correlationId ? { [HEADERS.correlationId]: correlationId } : {}), ...options.headers },
      });
    },
  };
}
