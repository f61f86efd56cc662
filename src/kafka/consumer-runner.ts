import type { Consumer, EachMessagePayload, Kafka } from 'kafkajs';
import type { Logger } from '../log.js';
import type { InboundMessage } from '../service.js';
import { HEADERS, headersToStrings, jsonCodec, type Codec } from './codec.js';
import { consumerConfig } from './client.js';
import { deadLetter, type DeadLetterReason } from './dead-letter.js';
import type { Sender } from './sender.js';

export interface RetryPolicy {
  /** Handler attempts before a message is dead-lettered. */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, initialDelayMs: 100, maxDelayMs: 2_000 };

export interface ConsumerRunnerOptions {
  kafka: Kafka;
  groupId: string;
  topics: readonly string[];
  fromBeginning?: boolean;
  sessionTimeoutMs: number;
  logger: Logger;
  /** Sends dead letters; shared with the worker's own sends. */
  sender: Sender;
  codec?: Codec;
  retry?: RetryPolicy;
  partitionsConsumedConcurrently?: number;
  handle(message: InboundMessage): Promise<void>;
  /** A failure kafkajs will not recover from: the worker should exit and be replaced. */
  onFatal(error: Error): void;
}

export interface ConsumerRunner {
  /** Connects, joins the group and starts fetching; resolves once the group is joined. */
  start(): Promise<void>;
  /** Stops fetching, lets handlers in flight finish, commits their offsets and leaves the group. */
  drain(): Promise<void>;
  readonly stats: { handled: number; errors: number; retries: number; deadLettered: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * At-least-once consumption: kafkajs resolves a message's offset only after `eachMessage`
 * returns, and commits resolved offsets after each batch and on stop — so an offset is committed
 * only after its handler finished and the sends it awaited were acknowledged. A failing handler
 * is retried with backoff; after the last attempt, or at once for a value that cannot be decoded,
 * the message is parked in `<topic>.dlq` and the partition moves on.
 */
export function createConsumerRunner(options: ConsumerRunnerOptions): ConsumerRunner {
  const { kafka, groupId, topics, fromBeginning = true, sessionTimeoutMs, logger, sender, codec = jsonCodec, retry = DEFAULT_RETRY } = options;
  const consumer: Consumer = kafka.consumer(consumerConfig(groupId, { sessionTimeout: sessionTimeoutMs }));
  const stats = { handled: 0, errors: 0, retries: 0, deadLettered: 0 };
  let draining = false;

  async function park(payload: EachMessagePayload, reason: DeadLetterReason): Promise<void> {
    await deadLetter(sender, payload, reason);
    stats.deadLettered++;
    logger.warn({ topic: payload.topic, partition: payload.partition, offset: payload.message.offset, reason: reason.error.message }, 'message parked in the dead-letter topic');
  }

  async function eachMessage(payload: EachMessagePayload): Promise<void> {
    const { topic, partition, message } = payload;
    let value: unknown;
    try {
      value = codec.decode(message.value ?? Buffer.alloc(0));
    } catch (error) {
      stats.errors++;
      await park(payload, { error: error as Error, attempts: 0 });
      return;
    }
    const inbound: InboundMessage = {
      value,
      key: message.key ? message.key.toString('utf8') : null,
      headers: headersToStrings(message.headers),
      topic,
      partition,
      offset: message.offset,
      timestamp: message.timestamp,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await options.handle({ ...inbound, headers: { ...inbound.headers, [HEADERS.attempt]: String(attempt) } });
        stats.handled++;
        return;
      } catch (error) {
        stats.errors++;
        if (attempt >= retry.attempts) {
          await park(payload, { error: error as Error, attempts: attempt });
          return;
        }
        stats.retries++;
        logger.debug({ topic, partition, offset: message.offset, attempt, error: (error as Error).message }, 'handler failed; retrying');
        const delay = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
        await sleep(draining ? 0 : delay * (0.5 + Math.random() / 2));
      }
    }
  }

  return {
    stats,
    async start() {
      const joined = new Promise<void>((resolve) => {
        const off = consumer.on(consumer.events.GROUP_JOIN, () => {
          off();
          resolve();
        });
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) options.onFatal(payload.error);
      });
      await consumer.connect();
      // Right after a topic is created, metadata can lag ("does not host this topic-partition"):
      // retriable errors while subscribing are retried, not turned into a crash.
      for (let attempt = 1; ; attempt++) {
        try {
          await consumer.subscribe({ topics: [...topics], fromBeginning });
          break;
        } catch (error) {
          if (!(error as { retriable?: boolean }).retriable || attempt >= 10) throw error;
          logger.debug({ err: error, attempt }, 'subscribe failed; retrying');
          await sleep(100 * attempt);
        }
      }
      await consumer.run({ partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 4, eachMessage });
      await joined;
    },
    async drain() {
      draining = true;
      // disconnect() stops fetching, waits for the batch in flight, commits and leaves the group.
      await consumer.disconnect();
    },
  };
}
