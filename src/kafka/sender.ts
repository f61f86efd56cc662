import { randomUUID } from 'node:crypto';
import type { Kafka, Message, Producer } from 'kafkajs';
import { KafkaError } from '../errors.js';
import type { SendOptions } from './message.js';
import { HEADERS, resolveCodec, type Codec } from './codec.js';
import { producerConfig } from './client.js';
import { retryDelay, sleep } from './retry.js';
import { newTraceparent } from './trace.js';
import { activeTracer, endWith } from '../tracing.js';
import { startSendSpan, traceparentOf } from './spans.js';
import { isTopicName, TOPIC_NAME_RULE } from './topic-name.js';
import type { ThreadMetrics } from '../thread-metrics.js';

export interface RawMessage {
  key: Buffer | string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  partition?: number;
}

export interface Sender {
  connect(): Promise<void>;
  /**
   * Encodes and sends one value; resolves once acknowledged by all in-sync replicas. Adds
   * content-type, a new message-id and, unless the headers carry one, a new traceparent.
   */
  send(topic: string, value: unknown, options?: SendOptions): Promise<void>;
  /** Sends bytes and headers as they are (dead letters, replays). */
  sendRaw(topic: string, message: RawMessage): Promise<void>;
  /** Waits for the sends under way, then closes the producer. */
  disconnect(): Promise<void>;
  /** Sends acknowledged so far. */
  readonly sent: number;
}

export interface SenderOptions {
  codec?: Codec;
  /** A batch leaves once it holds this many messages… */
  maxBatchMessages?: number;
  /** …or this many bytes of values (under the broker's default 1 MiB per partition batch), else at the end of the event-loop turn. */
  maxBatchBytes?: number;
  /** How long a send keeps trying while no broker can be reached, as Java's delivery.timeout.ms (default 120 s). */
  deliveryTimeoutMs?: number;
  /** Counts acknowledged sends and times each request for `/metrics`. */
  metrics?: Pick<ThreadMetrics, 'sent'>;
}

const UNREACHABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSBrokerNotFound',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
]);

/**
 * Whether a failed send failed because no broker could be reached (a restart, a network blip),
 * as opposed to the message being refused. kafkajs retries refusals that can pass (an idempotent
 * producer forever), but gives up on connecting after its client retries, wrapping the cause.
 */
export function isBrokerUnreachable(error: unknown): boolean {
  for (let e = error as { name?: string; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 10; depth++) {
    if (e.name && UNREACHABLE.has(e.name)) return true;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return false;
}

/**
 * A topic name Kafka would refuse, refused here before kafkajs sees it: kafkajs adds a send's
 * topic to the metadata it refreshes, so an invalid name there also fails the sends of other
 * messages running at the same time.
 */
function invalidTopic(topic: string): KafkaError | undefined {
  if (isTopicName(topic)) return undefined;
  return new KafkaError(`Cannot send to "${topic}": not a valid Kafka topic name (${TOPIC_NAME_RULE}).`, {
    retriable: false,
    context: { topic },
  });
}

interface Queued {
  topic: string;
  message: Message;
  bytes: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * One idempotent producer per worker, shared by everything the worker sends. Sends made in the
 * same event-loop turn leave as one request (kafkajs sends each `send` call as a request of its
 * own: 1,250 concurrent sends took ~4 s here, one batch of them 60 ms). Each caller still gets
 * its own acknowledgement. If a batch fails, its messages are sent again one by one, so one bad
 * message fails only its own send (the others may then be written twice: at-least-once). While
 * no broker answers (a restart), sends wait and try again, up to `deliveryTimeoutMs`.
 */
export function createSender(
  kafka: Kafka,
  { codec: defaultCodec, maxBatchMessages = 500, maxBatchBytes = 512 * 1024, deliveryTimeoutMs = 120_000, metrics }: SenderOptions = {},
): Sender {
  const producer: Producer = kafka.producer(producerConfig());
  const fallback = resolveCodec(defaultCodec);
  /** The batch under way; sendBatch never rejects (each message gets its own outcome). */
  let sending: Promise<void> | undefined;
  let queue: Queued[] = [];
  let queuedBytes = 0;
  let scheduled = false;
  let sent = 0;

  /**
   * Rides out a broker that cannot be reached for up to deliveryTimeoutMs (a retried write may
   * land twice); what still fails becomes a KafkaError, retriable unless Kafka refused the
   * message for good (too large, not authorised…), so a handler is not retried in vain.
   */
  async function patiently(send: () => Promise<unknown>, topics: string[]): Promise<void> {
    const deadline = Date.now() + deliveryTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        return;
      } catch (error) {
        const unreachable = isBrokerUnreachable(error);
        if (!unreachable || Date.now() >= deadline) {
          const e = error as { message?: string; retriable?: boolean; type?: string };
          throw new KafkaError(`Sending to ${topics.join(', ')} failed: ${e.message ?? String(error)}`, {
            cause: error,
            retriable: unreachable || e.retriable !== false,
            context: { topics, ...(e.type ? { type: e.type } : {}) },
          });
        }
        await sleep(
          Math.min(retryDelay({ attempts: 0, initialDelayMs: 200, maxDelayMs: 2_000 }, attempt), Math.max(0, deadline - Date.now())),
        );
      }
    }
  }

  async function sendBatch(batch: Queued[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of batch) byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
    const started = performance.now();
    try {
      await patiently(
        () => producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) }),
        [...byTopic.keys()],
      );
      sent += batch.length;
      if (metrics) for (const [topic, messages] of byTopic) metrics.sent(topic, messages.length, (performance.now() - started) / 1_000);
      for (const q of batch) q.resolve();
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      await Promise.all(
        batch.map((q) => {
          const alone = performance.now();
          return patiently(() => producer.send({ topic: q.topic, acks: -1, messages: [q.message] }), [q.topic]).then(() => {
            sent++;
            metrics?.sent(q.topic, 1, (performance.now() - alone) / 1_000);
            q.resolve();
          }, q.reject);
        }),
      );
    }
  }

  /**
   * Sends what is queued as one batch (up to the limits), unless a batch is still under way: then
   * the queue waits, and leaves once that one settled. One batch at a time keeps every
   * partition's sends in the order they were made (pipelined handlers rely on it): kafkajs gives
   * an idempotent batch its sequence number only when it reaches the broker's lock, so a batch
   * held up before that (a new topic's metadata, a leader not known yet) would be overtaken by a
   * later batch of the same partition. kafkajs's idempotent producer sends one request per broker
   * at a time anyway; what waits meanwhile leaves together.
   */
  function flush(): void {
    scheduled = false;
    if (queue.length === 0 || sending) return;
    let count = 0;
    let bytes = 0;
    while (count < queue.length && count < maxBatchMessages && (count === 0 || bytes + queue[count]!.bytes <= maxBatchBytes)) {
      bytes += queue[count]!.bytes;
      count++;
    }
    const batch = count === queue.length ? queue : queue.slice(0, count);
    queue = count === queue.length ? [] : queue.slice(count);
    queuedBytes -= bytes;
    const done = sendBatch(batch);
    sending = done;
    void done.finally(() => {
      sending = undefined;
      flush();
    });
  }

  function enqueue(topic: string, message: Message): Promise<void> {
    const invalid = invalidTopic(topic);
    if (invalid) return Promise.reject(invalid);
    return new Promise((resolve, reject) => {
      const bytes = (message.value as Buffer | null)?.length ?? 0;
      if (queue.length > 0 && queuedBytes + bytes > maxBatchBytes) flush();
      queue.push({ topic, message, bytes, resolve, reject });
      queuedBytes += bytes;
      if (queue.length >= maxBatchMessages) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  }

  return {
    connect: () => producer.connect(),
    send(topic, value, { key = null, headers = {}, partition, codec } = {}) {
      const chosen = codec === undefined ? fallback : resolveCodec(codec);
      let bytes: Buffer;
      try {
        bytes = chosen.encode(value);
      } catch (error) {
        return Promise.reject(error);
      }
      const message = {
        key,
        value: bytes,
        partition,
        headers: {
          [HEADERS.contentType]: chosen.contentType,
          [HEADERS.messageId]: randomUUID(),
          ...(headers[HEADERS.traceparent] ? {} : { [HEADERS.traceparent]: newTraceparent() }),
          ...headers,
        },
      };
      const tracer = activeTracer();
      if (!tracer) return enqueue(topic, message);
      // Traced: the caller's traceparent names the parent, the header sent names the send span.
      const span = startSendSpan(tracer, topic, headers[HEADERS.traceparent], message);
      message.headers[HEADERS.traceparent] = traceparentOf(span);
      return endWith(span, enqueue(topic, message));
    },
    sendRaw: (topic, { key, value, headers, partition }) => enqueue(topic, { key, value, headers, partition }),
    async disconnect() {
      for (flush(); sending; flush()) await sending;
      await producer.disconnect();
    },
    get sent() {
      return sent;
    },
  };
}
