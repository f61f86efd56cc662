export interface TopicPartition {
  topic: string;
  partition: number;
}

const partitionKeys = new Map<string, string[]>();

/**
 * One string per topic-partition, made once: the consume path looks partitions up in maps several
 * times per message, and a key built anew each time is an allocation and a hash every time.
 */
export function partitionKey(topic: string, partition: number): string {
  let keys = partitionKeys.get(topic);
  if (!keys) partitionKeys.set(topic, (keys = []));
  return (keys[partition] ??= `${topic}\u0000${partition}`);
}

export interface FlowControlOptions {
  /** Messages fetched and not finished, per worker. */
  maxInFlight: number;
  /** The same, per partition. */
  maxInFlightPerPartition: number;
  /** Applies a change of pause state (kafkajs consumer.pause / resume). */
  setPaused(partitions: TopicPartition[], paused: boolean): void;
}

export interface FlowControl {
  /** How many more messages a partition may take right now (0 when it, or the worker, is full). */
  room(topic: string, partition: number): number;
  add(topic: string, partition: number, count: number): void;
  /** `count` messages finished or dropped; `partition` undefined for those of a partition no longer tracked. */
  done(topic: string, partition: number | undefined, count: number): void;
  /**
   * The fetch buffer began (`true`) or ceased to hold messages of a partition that found no room.
   * It begins only while handling that partition's own fetched batch, when no fetch of it is in
   * flight: the partition is paused then, and resumed once nothing of it is held.
   */
  hold(topic: string, partition: number, holding: boolean): void;
  /** The partitions this member owns now; pause state is applied to all of them afresh. */
  assign(partitions: TopicPartition[]): void;
  /** Pauses everything for good (draining). */
  stop(): void;
  readonly stats: { inFlight: number; maxInFlightSeen: number; pausedPartitions: number; pauses: number };
}

/**
 * Backpressure: the fetcher runs ahead of the handlers, so something must stop it. A partition
 * may have `maxInFlightPerPartition` messages in its lane and the worker `maxInFlight` in all
 * (`room`); what a fetch brings beyond that waits in the fetch buffer, and a partition with
 * messages waiting there is paused until they have all found room. A paused partition is not
 * fetched: a slow handler makes the lag grow on the broker, not the heap here, and what is held
 * stays within one fetch per partition.
 *
 * Why pause on holding and not on the in-flight count: kafkajs drops what a fetch brought for a
 * partition paused while that fetch was in flight — after decoding it — and fetches it again once
 * the partition is resumed. A pause decided as handlers finish (at any time) would often land on
 * a fetch in flight; the buffer begins to hold a partition only while handling that partition's
 * own batch, when its fetcher waits for the batch and has nothing in flight, so nothing fetched
 * is thrown away (test/integration/flow-refetch.test.ts).
 */
export function createFlowControl({ maxInFlight, maxInFlightPerPartition, setPaused }: FlowControlOptions): FlowControl {
  type Lane = TopicPartition & { inFlight: number; held: boolean; paused: boolean };
  const perPartition = Math.min(maxInFlightPerPartition, maxInFlight);
  const lanes = new Map<string, Lane>();
  let total = 0;
  let stopped = false;
  const stats = { inFlight: 0, maxInFlightSeen: 0, pausedPartitions: 0, pauses: 0 };
  const key = partitionKey;

  /** Brings lanes' pause state in line with what they hold (every lane's stated again when `force`: kafkajs forgot). */
  function settle(changed: Iterable<Lane>, force: boolean): void {
    const pause: TopicPartition[] = [];
    const resume: TopicPartition[] = [];
    for (const lane of changed) {
      const want = stopped || lane.held;
      if (want !== lane.paused) stats.pausedPartitions += want ? 1 : -1;
      else if (!force) continue;
      lane.paused = want;
      (want ? pause : resume).push({ topic: lane.topic, partition: lane.partition });
    }
    if (pause.length > 0) {
      stats.pauses++;
      setPaused(pause, true);
    }
    if (resume.length > 0) setPaused(resume, false);
  }

  function count(lane: Lane | undefined, change: number): void {
    if (lane) lane.inFlight += change;
    total += change;
    stats.inFlight = total;
    if (total > stats.maxInFlightSeen) stats.maxInFlightSeen = total;
  }

  return {
    stats,
    room(topic, partition) {
      const lane = lanes.get(key(topic, partition));
      if (!lane || stopped) return 0;
      return Math.max(0, Math.min(perPartition - lane.inFlight, maxInFlight - total));
    },
    add(topic, partition, n) {
      count(lanes.get(key(topic, partition)), n);
    },
    done(topic, partition, n) {
      count(partition === undefined ? undefined : lanes.get(key(topic, partition)), -n);
    },
    hold(topic, partition, holding) {
      const lane = lanes.get(key(topic, partition));
      if (!lane || lane.held === holding) return;
      lane.held = holding;
      settle([lane], false);
    },
    assign(partitions) {
      const next = new Map<string, Lane>();
      for (const { topic, partition } of partitions) {
        const k = key(topic, partition);
        next.set(k, lanes.get(k) ?? { topic, partition, inFlight: 0, held: false, paused: false });
      }
      lanes.clear();
      for (const [k, lane] of next) lanes.set(k, lane);
      stats.pausedPartitions = [...lanes.values()].filter((lane) => lane.paused).length;
      // A restarted kafkajs consumer forgets its pauses: state them all again.
      settle(lanes.values(), true);
    },
    stop() {
      stopped = true;
      settle(lanes.values(), false);
    },
  };
}
