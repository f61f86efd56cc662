import type { Consumer, Kafka } from 'kafkajs';
import { consumerConfig } from '../../src/kafka/client.js';
import { HEADERS } from '../../src/kafka/codec.js';
import type { Ledger } from './ledger.js';
import { correlatedSeq } from './request.js';
import type { Timeline } from './timeline.js';

/**
 * Consumes the run's reply topic and the service's dead-letter topic, and settles each request in
 * the ledger. Latency is measured here: reply consumed minus the time the request was due.
 */
export interface CollectorOptions {
  kafka: Kafka;
  groupId: string;
  replyTopic: string;
  deadLetterTopic: string;
  ledger: Ledger;
  timeline: Timeline;
  /** Called after each batch of replies, so a closed-loop generator refills. */
  onProgress(): void;
}

export interface Collector {
  /** Connects and resolves once the group is joined, so no reply waits on a first rebalance. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCollector({
  kafka,
  groupId,
  replyTopic,
  deadLetterTopic,
  ledger,
  timeline,
  onProgress,
}: CollectorOptions): Collector {
  // maxWaitTimeInMs bounds how long a reply can sit on the broker before this fetch returns.
  const consumer: Consumer = kafka.consumer(consumerConfig(groupId, { maxWaitTimeInMs: 20, sessionTimeout: 10_000 }));
  return {
    async start() {
      const joined = new Promise<void>((resolve) => {
        const off = consumer.on(consumer.events.GROUP_JOIN, () => {
          off();
          resolve();
        });
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [replyTopic, deadLetterTopic], fromBeginning: true });
      await consumer.run({
        partitionsConsumedConcurrently: 8,
        eachBatch: async ({ batch }) => {
          const now = performance.now();
          const parked = batch.topic === deadLetterTopic;
          for (const message of batch.messages) {
            const seq = correlatedSeq(message.headers?.[HEADERS.correlationId]);
            if (parked) {
              ledger.deadLettered(seq);
              continue;
            }
            const { outcome, dueAt } = ledger.answered(seq);
            if (outcome === 'first') timeline.recordAnswer(now - dueAt, dueAt);
          }
          onProgress();
        },
      });
      await joined;
    },
    stop: () => consumer.disconnect(),
  };
}
