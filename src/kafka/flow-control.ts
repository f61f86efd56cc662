export interface TopicPartition {
  topic: string;
  partition: number;
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
  /** The partitions this member owns now; pause state is applied to all of them afresh. */
  assign(partitions: TopicPartition[]): void;
  /** Pauses everything for good (draining). */
  stop(): void;
  readonly stats: { inFlight: number; maxInFlightSeen: number; pausedPartitions: number; pauses: number };
}

/**
 * Backpressure: the fetcher runs ahead of the handlers, so something must stop it. A partition
 * whose own backlog reaches `maxInFlightPerPartition` is paused; when the worker's reaches
 * `maxInFlight`, every partition is. Each resumes once its backlog has fallen to half (so a
 * partition does not flap between paused and resumed on every message). A paused partition is
 * not fetched: a slow handler makes the lag grow on the broker, not the heap here.
 */
export function createFlowControl({ maxInFlight, maxInFlightPerPartition, setPaused }: FlowControlOptions): FlowControl {
  const perPartition = Math.min(maxInFlightPerPartition, maxInFlight);
  const lanes = new Map<string, TopicPartition & { inFlight: number; full: boolean; paused: boolean }>();
  let total = 0;
  let workerFull = false;
  let stopped = false;
  const stats = { inFlight: 0, maxInFlightSeen: 0, pausedPartitions: 0, pauses: 0 };
  const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

  /** Recomputes who should be paused and applies the differences (all of them when `force`). */
  function reconcile(force = false): void {
    if (total >= maxInFlight) workerFull = true;
    else if (total <= maxInFlight / 2) workerFull = false;
    const pause: TopicPartition[] = [];
    const resume: TopicPartition[] = [];
    let paused = 0;
    for (const lane of lanes.values()) {
      if (lane.inFlight >= perPartition) lane.full = true;
      else if (lane.inFlight <= perPartition / 2) lane.full = false;
      const want = stopped || workerFull || lane.full;
      if (want) paused++;
      if (want === lane.paused && !force) continue;
      lane.paused = want;
      (want ? pause : resume).push({ topic: lane.topic, partition: lane.partition });
    }
    stats.inFlight = total;
    stats.maxInFlightSeen = Math.max(stats.maxInFlightSeen, total);
    stats.pausedPartitions = paused;
    if (pause.length > 0) {
      stats.pauses++;
      setPaused(pause, true);
    }
    if (resume.length > 0) setPaused(resume, false);
  }

  return {
    stats,
    room(topic, partition) {
      const lane = lanes.get(key(topic, partition));
      if (!lane || stopped) return 0;
      return Math.max(0, Math.min(perPartition - lane.inFlight, maxInFlight - total));
    },
    add(topic, partition, count) {
      const lane = lanes.get(key(topic, partition));
      if (lane) lane.inFlight += count;
      total += count;
      reconcile();
    },
    done(topic, partition, count) {
      const lane = partition === undefined ? undefined : lanes.get(key(topic, partition));
      if (lane) lane.inFlight -= count;
      total -= count;
      reconcile();
    },
    assign(partitions) {
      const next = new Map<string, TopicPartition & { inFlight: number; full: boolean; paused: boolean }>();
      for (const { topic, partition } of partitions) {
        const k = key(topic, partition);
        next.set(k, lanes.get(k) ?? { topic, partition, inFlight: 0, full: false, paused: false });
      }
      lanes.clear();
      for (const [k, lane] of next) lanes.set(k, lane);
      // A restarted kafkajs consumer forgets its pauses: state them all again.
      reconcile(true);
    },
    stop() {
      stopped = true;
      reconcile();
    },
  };
}
