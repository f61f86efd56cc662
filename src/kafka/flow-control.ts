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
 *
 * This runs twice per message (add, done), so a change looks at its own partition only, and at
 * every partition only when the worker as a whole fills up or frees up.
 */
export function createFlowControl({ maxInFlight, maxInFlightPerPartition, setPaused }: FlowControlOptions): FlowControl {
  type Lane = TopicPartition & { inFlight: number; full: boolean; paused: boolean };
  const perPartition = Math.min(maxInFlightPerPartition, maxInFlight);
  const lanes = new Map<string, Lane>();
  let total = 0;
  let workerFull = false;
  let stopped = false;
  const stats = { inFlight: 0, maxInFlightSeen: 0, pausedPartitions: 0, pauses: 0 };
  const key = partitionKey;

  /** Whether a lane should be paused now (its own backlog's state updated first). */
  function wanted(lane: Lane): boolean {
    if (lane.inFlight >= perPartition) lane.full = true;
    else if (lane.inFlight <= perPartition / 2) lane.full = false;
    return stopped || workerFull || lane.full;
  }

  /** Brings one lane's pause state in line, collecting the change (every lane's state again when `force`). */
  function settle(lane: Lane, pause: TopicPartition[], resume: TopicPartition[], force: boolean): void {
    const want = wanted(lane);
    if (want !== lane.paused) stats.pausedPartitions += want ? 1 : -1;
    else if (!force) return;
    lane.paused = want;
    (want ? pause : resume).push({ topic: lane.topic, partition: lane.partition });
  }

  /** Recomputes who should be paused after a change to `changed` (every lane when the worker flips, or when `force`). */
  function reconcile(changed?: Lane, force = false): void {
    const wasFull = workerFull;
    if (total >= maxInFlight) workerFull = true;
    else if (total <= maxInFlight / 2) workerFull = false;
    stats.inFlight = total;
    if (total > stats.maxInFlightSeen) stats.maxInFlightSeen = total;
    // The usual case, once per message: one partition's backlog moved and nothing flips.
    if (!force && changed && workerFull === wasFull && wanted(changed) === changed.paused) return;
    const pause: TopicPartition[] = [];
    const resume: TopicPartition[] = [];
    if (force || workerFull !== wasFull || !changed) for (const lane of lanes.values()) settle(lane, pause, resume, force);
    else settle(changed, pause, resume, false);
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
      reconcile(lane);
    },
    done(topic, partition, count) {
      const lane = partition === undefined ? undefined : lanes.get(key(topic, partition));
      if (lane) lane.inFlight -= count;
      total -= count;
      reconcile(lane);
    },
    assign(partitions) {
      const next = new Map<string, Lane>();
      for (const { topic, partition } of partitions) {
        const k = key(topic, partition);
        next.set(k, lanes.get(k) ?? { topic, partition, inFlight: 0, full: false, paused: false });
      }
      lanes.clear();
      for (const [k, lane] of next) lanes.set(k, lane);
      stats.pausedPartitions = [...lanes.values()].filter((lane) => lane.paused).length;
      // A restarted kafkajs consumer forgets its pauses: state them all again.
      reconcile(undefined, true);
    },
    stop() {
      stopped = true;
      reconcile();
    },
  };
}
