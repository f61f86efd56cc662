import type { Kafka } from 'kafkajs';
import { DELIVERY_DEFAULTS, deliverySettings, type DeliveryOptions } from '../delivery.js';
import type { Logger } from '../log.js';
import { jsonCodec, type Codec } from './codec.js';
import { deadLetter } from './dead-letter.js';
import { createFetchBuffer } from './fetch-buffer.js';
import { createFlowControl, partitionKey, type FlowControl } from './flow-control.js';
import { createGroupConsumer } from './group-consumer.js';
import { createInboundDecoder } from './inbound.js';
import type { MessageSchema } from './message-schema.js';
import type { OffsetCommitter } from './offset-committer.js';
import { createBreather, createPartitionLane, type DeliveryStats, type LaneContext, type PartitionLane } from './partition-lane.js';
import { createSlots, type RetryPolicy } from './retry.js';
import type { Sender } from './sender.js';
import type { ThreadMetrics } from '../thread-metrics.js';

export type { RetryPolicy } from './retry.js';
export const DEFAULT_RETRY: RetryPolicy = DELIVERY_DEFAULTS.retry;

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
  schema?: MessageSchema;
  /** Retries, commits, backpressure, size limit; DELIVERY_DEFAULTS for what is left out. */
  delivery?: DeliveryOptions;
  /** Runs the handler: done when the message is handled, or once the handler returned with its sends under way (pipelined); LaneContext.handle. */
  handle: LaneContext['handle'];
  /** A failure kafkajs will not recover from: the worker should exit and be replaced. */
  onFatal(error: Error): void;
  /** Counts for `/metrics`: messages consumed, handler durations, dead letters by reason. */
  metrics?: ThreadMetrics;
}

export interface ConsumerStats extends DeliveryStats {
  inFlight: number;
  maxInFlightSeen: number;
  pausedPartitions: number;
  commits: number;
  commitFailures: number;
  rebalances: number;
}

/** A runner's counters as getters over its parts, so whoever reads them (heartbeats) sees them live. */
export function liveConsumerStats({
  delivery,
  inFlight,
  flow,
  committer,
  rebalances,
}: {
  delivery: DeliveryStats;
  inFlight: () => number;
  flow: FlowControl;
  committer: OffsetCommitter;
  rebalances: () => number;
}): ConsumerStats {
  return {
    get handled() {
      return delivery.handled;
    },
    get errors() {
      return delivery.errors;
    },
    get retries() {
      return delivery.retries;
    },
    get deadLettered() {
      return delivery.deadLettered;
    },
    get rejected() {
      return delivery.rejected;
    },
    get inFlight() {
      return inFlight();
    },
    get maxInFlightSeen() {
      return flow.stats.maxInFlightSeen;
    },
    get pausedPartitions() {
      return flow.stats.pausedPartitions;
    },
    get commits() {
      return committer.stats.commits;
    },
    get commitFailures() {
      return committer.stats.commitFailures;
    },
    get rebalances() {
      return rebalances();
    },
  };
}

export interface ConsumerRunner {
  /** Connects, joins the group and starts fetching; resolves once the group is joined. */
  start(): Promise<void>;
  /** Stops fetching, lets the handlers running finish, commits what is done and leaves the group. */
  drain(): Promise<void>;
  /**
   * The worker is failing: stops fetching, commits what is finished and leaves the group without
   * waiting for the handlers running (their messages go to the next owner), so a replacement can
   * join at once instead of after the group's session timeout.
   */
  abandon(): Promise<void>;
  readonly stats: Readonly<ConsumerStats>;
}

const laneKey = partitionKey;

/**
 * At-least-once consumption that does not let one partition hold up the rest. kafkajs fetches
 * (eachBatch, returning at once) into one lane per partition; lanes run handlers in offset order,
 * several partitions at a time. kafkajs's own model would wait for every batch of a fetch to be
 * handled before fetching again, so one message in retry backoff would stall every partition.
 *
 * - Commits: an offset is committed only once its message and every earlier one in the
 *   partition were handled (sends awaited) or parked; batched by `commit.intervalMs` and
 *   `commit.threshold`, and flushed when the group rebalances and when the worker drains.
 * - Backpressure: flow-control.ts pauses partitions whose backlog is full.
 * - Retries with backoff, then `<topic>.dlq`; bad input (size, codec, schema) parked at once.
 * - Rebalance: lanes of revoked partitions drop what they queued (the next owner reads it from
 *   the last commit); kept partitions skip what kafkajs fetches again from that commit.
 */
export function createConsumerRunner(options: ConsumerRunnerOptions): ConsumerRunner {
  const { logger, sender } = options;
  const settings = deliverySettings(options.delivery);
  const lanes = new Map<string, PartitionLane>();
  const delivery: DeliveryStats = { handled: 0, errors: 0, retries: 0, deadLettered: 0, rejected: 0 };
  let draining = false;
  let rebalancing: { opened: Promise<void>; open(): void } | undefined;

  const group = createGroupConsumer({
    ...options,
    fromBeginning: options.fromBeginning ?? true,
    commit: settings.commit,
    isAssigned: (topic, partition) => lanes.get(laneKey(topic, partition))?.owned === true,
    onAssigned(assigned) {
      const keys = new Set(assigned.map((tp) => laneKey(tp.topic, tp.partition)));
      for (const [key, lane] of lanes) if (!keys.has(key)) stopLane(key, lane);
      for (const { topic, partition } of assigned) {
        const key = laneKey(topic, partition);
        if (!lanes.has(key)) lanes.set(key, createPartitionLane(topic, partition, laneContext));
      }
      flow.assign(assigned);
      logger.debug({ partitions: assigned.length }, 'partitions assigned');
      openGate();
    },
    onRebalancing() {
      if (draining || rebalancing) return;
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      rebalancing = { opened, open };
    },
    onLost() {
      for (const [key, lane] of lanes) stopLane(key, lane);
      flow.assign([]);
      openGate();
    },
    async eachBatch({ batch, resolveOffset }) {
      const lane = lanes.get(laneKey(batch.topic, batch.partition));
      if (draining || !lane?.owned) return;
      buffer.accept(lane, batch, resolveOffset);
    },
  });
  const flow = createFlowControl({
    maxInFlight: settings.maxInFlight,
    maxInFlightPerPartition: settings.maxInFlightPerPartition,
    setPaused: group.setPaused,
  });
  const buffer = createFetchBuffer<PartitionLane>({
    lane: (topic, partition) => {
      const lane = lanes.get(laneKey(topic, partition));
      return lane?.owned ? lane : undefined;
    },
    room: (lane) => flow.room(lane.topic, lane.partition),
    take(lane, messages) {
      flow.add(lane.topic, lane.partition, messages.length);
      lane.push(messages);
    },
    holding: (lane, holding) => flow.hold(lane.topic, lane.partition, holding),
  });
  const { committer } = group;
  const laneContext: LaneContext = {
    decode: createInboundDecoder({ codec: options.codec ?? jsonCodec, schema: options.schema, maxMessageBytes: settings.maxMessageBytes }),
    handle: options.handle,
    metrics: options.metrics,
    park: (source, reason) => deadLetter(sender, source, reason, options.metrics),
    retry: settings.retry,
    slots: createSlots(settings.partitionsConsumedConcurrently),
    stats: delivery,
    logger,
    gate: () => rebalancing?.opened,
    breathe: createBreather(),
    finished(lane, message, committable) {
      // A lane is in `lanes` exactly while it is owned (stopLane revokes it as it removes it), so
      // `owned` says whether it is still this partition's lane, without a lookup per message.
      const mine = lane.owned;
      flow.done(lane.topic, mine ? lane.partition : undefined, 1);
      if (committable && mine) committer.markThrough(lane.topic, lane.partition, message.offset);
      // Room freed here may be the worker's, not only this partition's: every held lane may go on.
      if (mine && !draining) buffer.feed();
    },
  };

  /** Nothing new starts from here on; returns the lanes, whose running handlers may still finish. */
  function stopTaking(): PartitionLane[] {
    draining = true;
    buffer.clear();
    flow.stop();
    openGate();
    const running = [...lanes.values()];
    for (const lane of running) flow.done(lane.topic, lane.partition, lane.stop());
    return running;
  }

  function openGate(): void {
    rebalancing?.open();
    rebalancing = undefined;
  }

  function stopLane(key: string, lane: PartitionLane): void {
    buffer.drop(lane.topic, lane.partition);
    const dropped = lane.revoke();
    lanes.delete(key);
    committer.forget(lane.topic, lane.partition);
    flow.done(lane.topic, undefined, dropped);
  }

  return {
    stats: liveConsumerStats({ delivery, inFlight: () => flow.stats.inFlight, flow, committer, rebalances: () => group.rebalances }),
    start: () => group.start(),
    async drain() {
      await Promise.all(stopTaking().map((lane) => lane.idle()));
      await group.stop();
    },
    async abandon() {
      stopTaking();
      await group.stop();
    },
  };
}
