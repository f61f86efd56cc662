import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from '../log.js';
import { consumerConfig } from './client.js';
import type { TopicPartition } from './flow-control.js';
import { createOffsetCommitter, type OffsetCommitter } from './offset-committer.js';
import { sleep } from './retry.js';
import { startCommitSpan } from './spans.js';
import { activeTracer, endWith } from '../tracing.js';

export interface GroupConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topics: readonly string[];
  fromBeginning: boolean;
  sessionTimeoutMs: number;
  logger: Logger;
  commit: { intervalMs: number; threshold: number };
  /** Whether a partition is still this member's: a failed commit is kept for the next only then. */
  isAssigned(topic: string, partition: number): boolean;
  /** The group formed (again): these are this member's partitions now. */
  onAssigned(partitions: TopicPartition[]): void;
  /** The group is about to re-form: start nothing new until onAssigned. */
  onRebalancing(): void;
  /** kafkajs left the group after an error: nothing in flight is this member's to commit any more. */
  onLost(): void;
  /** Takes a fetched batch and returns at once (the runner's lanes or pool do the handling). */
  eachBatch(payload: EachBatchPayload): Promise<void>;
  /** An error kafkajs will not restart after: the worker should exit and be replaced. */
  onFatal(error: Error): void;
}

export interface GroupConsumer {
  /** Commits the offsets the runner marks: batched, flushed when the group re-forms and at stop. */
  readonly committer: OffsetCommitter;
  /** Times this member joined the group. */
  readonly rebalances: number;
  /** Pauses or resumes fetching of partitions (flow control's hands). */
  setPaused(partitions: TopicPartition[], paused: boolean): void;
  /** Connects, subscribes and starts fetching; resolves once the group is joined. */
  start(): Promise<void>;
  /** Commits what is marked and leaves the group (after the runner let its handlers finish). */
  stop(): Promise<void>;
}

/**
 * The kafkajs consumer under both runners (consumer-runner.ts, and the pool's): a group member
 * that fetches ahead into `eachBatch` and never commits on its own. It follows the group's life —
 * joined, re-forming, lost after a crash — tells the runner, and commits only what the runner
 * marked as finished: flushed while the partitions are still this member's when the group
 * re-forms, forgotten when they were lost.
 */
export function createGroupConsumer(options: GroupConsumerOptions): GroupConsumer {
  const { logger } = options;
  const consumer: Consumer = options.kafka.consumer(consumerConfig(options.groupId, { sessionTimeout: options.sessionTimeoutMs }));
  const committer = createOffsetCommitter({
    commit(offsets) {
      const tracer = activeTracer();
      if (!tracer) return consumer.commitOffsets(offsets);
      return endWith(startCommitSpan(tracer, options.groupId, offsets), consumer.commitOffsets(offsets));
    },
    intervalMs: options.commit.intervalMs,
    threshold: options.commit.threshold,
    isAssigned: options.isAssigned,
    logger,
  });
  let rebalances = 0;

  return {
    committer,
    get rebalances() {
      return rebalances;
    },
    setPaused(partitions, paused) {
      const byTopic = new Map<string, number[]>();
      for (const { topic, partition } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
      const list = [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps }));
      try {
        if (paused) consumer.pause(list);
        else consumer.resume(list);
      } catch (error) {
        // Between a crash and kafkajs's restart there is no group to pause; onAssigned re-applies it.
        logger.debug({ err: error }, 'could not change pause state');
      }
    },
    async start() {
      const joined = new Promise<void>((resolve) => {
        const off = consumer.on(consumer.events.GROUP_JOIN, () => {
          off();
          resolve();
        });
      });
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        rebalances++;
        options.onAssigned(
          Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition }))),
        );
        void committer.flush();
      });
      // Commit what is done while this member still owns its partitions.
      consumer.on(consumer.events.REBALANCING, () => {
        options.onRebalancing();
        void committer.flush();
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        // kafkajs has left the group (and rejoins, when it restarts): nothing here is ours now.
        options.onLost();
        committer.forgetAll();
        if (!payload.restart) options.onFatal(payload.error);
        else logger.warn({ err: payload.error }, 'consumer crashed; kafkajs restarts it');
      });
      await consumer.connect();
      await subscribeWithRetry(consumer, options.topics, options.fromBeginning, logger);
      // eachBatch only hands messages on, so one kafkajs worker is plenty.
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: options.eachBatch,
      });
      committer.start();
      await joined;
    },
    async stop() {
      committer.stop();
      await committer.flush();
      await consumer.disconnect();
    },
  };
}

/**
 * Subscribes, riding out the metadata lag right after a topic is created ("does not host this
 * topic-partition"): retriable errors are retried with a growing pause, anything else is thrown.
 */
async function subscribeWithRetry(
  consumer: Consumer,
  topics: readonly string[],
  fromBeginning: boolean,
  logger: Logger,
  attempts = 10,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await consumer.subscribe({ topics: [...topics], fromBeginning });
      return;
    } catch (error) {
      if (!(error as { retriable?: boolean }).retriable || attempt >= attempts) throw error;
      logger.debug({ err: error, attempt }, 'subscribe failed; retrying');
      await sleep(100 * attempt);
    }
  }
}
