import { createRequire } from 'node:module';
import { Kafka, Partitioners, type KafkaConfig, type ProducerConfig, type ConsumerConfig } from 'kafkajs';
import { PrerequisiteError } from '../errors.js';
import type { Logger } from '../log.js';
import { kafkaLogCreator, kafkaLogLevel } from '../log.js';

/**
 * The only place that constructs kafkajs objects. kafkajs is in maintenance mode; keeping it
 * behind this factory (and the rest of src/kafka) is what lets the client be swapped later.
 */
export interface ClientOptions {
  brokers: readonly string[];
  clientId?: string;
  logger: Logger;
  /** Extra kafkajs settings (ssl, sasl, retry…) for clusters other than the local one. */
  kafka?: Partial<Omit<KafkaConfig, 'brokers' | 'logCreator' | 'logLevel'>>;
}

/** What patches/kafkajs+2.2.4.patch leaves in kafkajs's producer: without it, sends can resolve for messages never written. */
const KAFKAJS_PATCH = 'wharf-send-per-partition-v1';

let patchChecked = false;

/**
 * Refuses to run on a kafkajs without wharf's patch (docs/reliability.md): its producer
 * acknowledges messages that were never written when a partition's leader moves. `npm install`
 * in this repository applies the patch (patch-package, postinstall); an application that depends
 * on wharf applies the same file with its own patch-package.
 */
export function assertKafkajsPatched(): void {
  if (patchChecked) return;
  const require = createRequire(import.meta.url);
  let marker: unknown;
  try {
    marker = (require('kafkajs/src/producer/sendMessages.js') as { WHARF_PATCH?: unknown }).WHARF_PATCH;
  } catch {
    marker = undefined;
  }
  if (marker !== KAFKAJS_PATCH) {
    throw new PrerequisiteError(
      'The installed kafkajs lacks the fix wharf needs to never lose an acknowledged send when a broker dies ' +
        '(patches/kafkajs+2.2.4.patch). Run `npm install` in the wharf folder (it applies the patch), or add ' +
        "`patch-package` with wharf's patches/ folder to your application's postinstall.",
      { context: { expected: KAFKAJS_PATCH } },
    );
  }
  patchChecked = true;
}

export function createKafka({ brokers, clientId = 'wharf', logger, kafka = {} }: ClientOptions): Kafka {
  assertKafkajsPatched();
  return new Kafka({
    clientId,
    brokers: [...brokers],
    logCreator: kafkaLogCreator(logger),
    logLevel: kafkaLogLevel(logger),
    // About as patient as kafkajs's default (~50 s in all), but never more than 5 s between tries, so
    // a client notices within seconds that a restarted broker (or its coordinator) is back; a new
    // producer id asked for right after a restart waited up to 30 s between tries.
    retry: { initialRetryTime: 100, maxRetryTime: 5_000, retries: 15 },
    ...kafka,
  });
}

/**
 * Producer defaults for at-least-once delivery: idempotent, so retried sends never duplicate.
 * The partitioner is chosen explicitly (the default murmur2 one, as the Java client uses) so
 * keys land on the same partitions as other clients put them, and kafkajs's warning is moot.
 */
export function producerConfig(overrides: ProducerConfig = {}): ProducerConfig {
  return {
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 5,
    // An idempotent producer keeps retrying (through a broker restart) rather than give up on a
    // send and leave the caller to decide whether it was written.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 5_000 },
    ...overrides,
  };
}

/** Consumer defaults tuned for fast failover: the broker's floor for the session is 6 s. */
export function consumerConfig(groupId: string, overrides: Partial<ConsumerConfig> = {}): ConsumerConfig {
  return {
    groupId,
    sessionTimeout: 10_000,
    rebalanceTimeout: 20_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 100,
    // What a paused partition's fetch leaves held in memory (src/kafka/fetch-buffer.ts) is bounded
    // by these: half of kafkajs's defaults, still thousands of small messages per fetch.
    maxBytesPerPartition: 512 * 1024,
    maxBytes: 5 * 1024 * 1024,
    ...overrides,
  };
}
