import { randomBytes, randomUUID } from 'node:crypto';
import type { Consumer, EachMessagePayload, Kafka } from 'kafkajs';
import { TimeoutError, WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestOptions } from './message.js';
import { consumerConfig } from './client.js';
import { CODECS, HEADERS, headersToStrings, jsonCodec } from './codec.js';
import { validateMessage } from './message-schema.js';
import { sleep } from './retry.js';
import type { Sender } from './sender.js';
import { activeTracer, endWith, failSpan } from '../tracing.js';
import { startProcessSpan, startRequestSpan, traceparentOf } from './spans.js';
import { createTopics } from './topics.js';

export interface RequesterOptions {
  kafka: Kafka;
  sender: Sender;
  logger: Logger;
  /** This worker's reply topic (created when missing): see replyTopicFor. */
  replyTopic: string;
  sessionTimeoutMs: number;
  defaultTimeoutMs: number;
}

export interface RequesterStats {
  requests: number;
  replies: number;
  timeouts: number;
  /** Replies to requests that had already timed out. */
  lateReplies: number;
  /** Second (third…) replies to a request already answered: the request was delivered more than once. */
  duplicateReplies: number;
  /** Replies matching no request this worker made (no correlation id, another worker's, a stray message). */
  unknownReplies: number;
  pending: number;
}

export interface Requester {
  request<R>(topic: string, value: unknown, options?: RequestOptions<R>): Promise<R>;
  /** Rejects what is pending, stops listening and deletes the listener's group. */
  close(): Promise<void>;
  readonly stats: Readonly<RequesterStats>;
}

/**
 * The reply topic of one worker slot: `<clientId>.replies.<service>.<role>.<index>`. One per slot
 * (not per service) so a reply reaches the thread that waits for it without every worker reading
 * every reply; stable across restarts so topics do not pile up. Deployments sharing a cluster
 * should use different `kafka.clientId`s; if they do not, each still gets its own replies (see
 * the instance mark below), it only reads the other's too.
 */
export function replyTopicFor(clientId: string, workerId: string): string {
  return `${clientId}.replies.${workerId.replaceAll('/', '.')}`;
}

const REPLY_RETENTION_MS = String(60 * 60 * 1000);
/** Correlation ids of settled requests are kept this long to tell late and duplicate replies from unknown ones. */
const SETTLED_WINDOW_MS = 10 * 60 * 1000;
const MAX_SETTLED = 100_000;

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
  schema: RequestOptions['schema'];
}

/**
 * ctx.request: send with `reply-to` and a `correlation-id`, and resolve when the reply with that
 * id comes back on this worker's reply topic; reject with a TimeoutError at the deadline, which
 * covers the send too. Correlation ids start with a mark of this thread (`<instance>.<uuid>`), for
 * whoever reads the topic. The listener (a consumer in a group of its own, reading from the end of
 * the topic) starts with the first request. Replies matching nothing pending are dropped and
 * counted: late (that request timed out), duplicate (already answered) or unknown.
 */
export function createRequester({ kafka, sender, logger, replyTopic, sessionTimeoutMs, defaultTimeoutMs }: RequesterOptions): Requester {
  const instance = randomBytes(6).toString('hex');
  const groupId = `${replyTopic}.${instance}`;
  const pending = new Map<string, Pending>();
  const settled = new Map<string, { at: number; timedOut: boolean }>();
  const counts = { requests: 0, replies: 0, timeouts: 0, lateReplies: 0, duplicateReplies: 0, unknownReplies: 0 };
  let consumer: Consumer | undefined;
  let listening: Promise<void> | undefined;
  let closed = false;

  function remember(correlationId: string, timedOut: boolean): void {
    const now = Date.now();
    settled.set(correlationId, { at: now, timedOut });
    for (const [id, entry] of settled) {
      if (settled.size <= MAX_SETTLED && now - entry.at < SETTLED_WINDOW_MS) break;
      settled.delete(id);
    }
  }

  async function onReply({ message, partition }: EachMessagePayload): Promise<void> {
    const headers = headersToStrings(message.headers);
    const correlationId = headers[HEADERS.correlationId];
    const entry = correlationId === undefined ? undefined : pending.get(correlationId);
    if (!entry || correlationId === undefined) {
      const earlier = correlationId === undefined ? undefined : settled.get(correlationId);
      if (earlier?.timedOut) {
        counts.lateReplies++;
        logger.info({ topic: replyTopic, correlationId }, 'reply arrived after its request timed out; dropped');
      } else if (earlier) {
        counts.duplicateReplies++;
        logger.info(
          { topic: replyTopic, correlationId },
          'second reply to a request already answered (the request was delivered again); dropped',
        );
      } else if (correlationId !== undefined && /^[0-9a-f]{12}\./.test(correlationId) && !correlationId.startsWith(`${instance}.`)) {
        // Another requester's reply on a topic two supervisors share (one deployment, one clientId).
        logger.debug({ topic: replyTopic, correlationId }, "another requester's reply on this worker's reply topic; skipped");
      } else {
        counts.unknownReplies++;
        logger.warn(
          { topic: replyTopic, partition, offset: message.offset, correlationId: correlationId ?? null },
          'reply matches no request of this worker; dropped',
        );
      }
      return;
    }
    pending.delete(correlationId);
    clearTimeout(entry.timer);
    remember(correlationId, false);
    counts.replies++;
    const tracer = activeTracer();
    const span =
      tracer &&
      startProcessSpan(
        tracer,
        { topic: replyTopic, partition, offset: message.offset, key: message.key?.toString('utf8') ?? null, headers },
        groupId,
      );
    try {
      const contentType = headers[HEADERS.contentType];
      const codec = Object.values(CODECS).find((c) => c.contentType === contentType) ?? jsonCodec;
      const value = codec.decode(message.value ?? Buffer.alloc(0));
      entry.resolve(entry.schema ? await validateMessage(entry.schema, value, 'reply') : value);
      span?.end();
    } catch (error) {
      if (span) failSpan(span, error);
      entry.reject(error);
    }
  }

  async function listen(): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await createTopics(admin, [
        { topic: replyTopic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: REPLY_RETENTION_MS }] },
      ]);
    } finally {
      await admin.disconnect();
    }
    const c = kafka.consumer(consumerConfig(groupId, { sessionTimeout: sessionTimeoutMs }));
    consumer = c;
    // Ready once the first fetch has fixed the position at the end of the topic: every reply to
    // a request sent after that is read.
    const positioned = new Promise<void>((resolve) => {
      const offJoin = c.on(c.events.GROUP_JOIN, () => {
        offJoin();
        const offFetch = c.on(c.events.FETCH, () => {
          offFetch();
          resolve();
        });
      });
    });
    await c.connect();
    for (let attempt = 1; ; attempt++) {
      try {
        await c.subscribe({ topic: replyTopic, fromBeginning: false });
        break;
      } catch (error) {
        if (!(error as { retriable?: boolean }).retriable || attempt >= 10) throw error;
        await sleep(100 * attempt);
      }
    }
    await c.run({ eachMessage: onReply });
    await positioned;
    logger.debug({ topic: replyTopic, groupId }, 'listening for replies');
  }

  return {
    get stats() {
      return { ...counts, pending: pending.size };
    },
    async request<R>(topic: string, value: unknown, options: RequestOptions<R> = {}): Promise<R> {
      if (closed)
        throw new WharfError('ERR_REQUESTER_CLOSED', `Cannot send a request to ${topic}: this worker is draining.`, { context: { topic } });
      const { timeoutMs = defaultTimeoutMs, key = null, headers = {}, codec, schema } = options;
      const correlationId = `${instance}.${randomUUID()}`;
      counts.requests++;
      const tracer = activeTracer();
      const span = tracer && startRequestSpan(tracer, topic, headers[HEADERS.traceparent], correlationId);
      const reply = new Promise<R>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(correlationId);
          remember(correlationId, true);
          counts.timeouts++;
          reject(
            new TimeoutError(
              `No reply from ${topic} within ${timeoutMs} ms (correlation-id ${correlationId}): is a service consuming ${topic} running?`,
              {
                context: { topic, correlationId, timeoutMs },
              },
            ),
          );
        }, timeoutMs);
        pending.set(correlationId, { resolve: resolve as (v: unknown) => void, reject, timer, schema });
      });
      const fail = (error: unknown) => {
        const entry = pending.get(correlationId);
        if (!entry) return;
        pending.delete(correlationId);
        clearTimeout(entry.timer);
        entry.reject(error);
      };
      try {
        listening ??= listen().catch((error: unknown) => {
          listening = undefined; // the next request tries again
          throw error;
        });
        await Promise.race([
          listening,
          reply.then(
            () => undefined,
            () => undefined,
          ),
        ]);
        if (pending.has(correlationId)) {
          await sender.send(topic, value, {
            key,
            codec,
            headers: {
              ...headers,
              [HEADERS.replyTo]: replyTopic,
              [HEADERS.correlationId]: correlationId,
              ...(span ? { [HEADERS.traceparent]: traceparentOf(span) } : {}),
            },
          });
        }
      } catch (error) {
        fail(error);
      }
      return span ? endWith(span, reply) : reply;
    },
    async close() {
      closed = true;
      for (const [id, entry] of pending) {
        clearTimeout(entry.timer);
        entry.reject(
          new WharfError('ERR_REQUESTER_CLOSED', `The request (correlation-id ${id}) was abandoned: the worker is draining.`, {
            retriable: true,
          }),
        );
      }
      pending.clear();
      await listening?.catch(() => undefined);
      if (!consumer) return;
      await consumer.disconnect();
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.deleteGroups([groupId]);
      } catch (error) {
        logger.debug({ err: error, groupId }, 'could not delete the reply group (it expires by itself)');
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}
