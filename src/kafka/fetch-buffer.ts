import type { Batch, KafkaMessage } from 'kafkajs';

/** What the buffer needs of a partition's lane (the consumer runner's and the pool's alike). */
export interface FetchLane {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to accept; lower ones were taken already (fetched again after a rebalance). */
  nextOffset: bigint | undefined;
}

export interface FetchBufferOptions<L extends FetchLane> {
  /** The partition's lane while this member owns it, else undefined. */
  lane(topic: string, partition: number): L | undefined;
  /** How many more messages the flow limits let this lane take now. */
  room(lane: L): number;
  /** Hands messages to the lane (and counts them in flight). */
  take(lane: L, messages: KafkaMessage[]): void;
  /**
   * The buffer began to hold messages of this lane (`true`: only within `accept`, while handling
   * the partition's own batch) or holds none any more (FlowControl.hold).
   */
  holding(lane: L, holding: boolean): void;
}

export interface FetchBuffer<L extends FetchLane> {
  /**
   * Takes one fetched batch for `lane`: skips what the lane took already, moves kafkajs's fetch
   * position past the whole batch (its last offset also steps over trailing control records), and
   * hands on what the limits allow; the rest is held.
   */
  accept(lane: L, batch: Batch, resolveOffset: (offset: string) => void): void;
  /**
   * Hands held messages on wherever the limits leave room (call when in-flight work ends). Runs
   * once at the next turn of the event loop however often it is called meanwhile: messages end
   * by the thousand per second, and each feed walks every held partition.
   */
  feed(): void;
  /** Forgets a partition's held messages (revoked: its next owner reads them from the last commit). */
  drop(topic: string, partition: number): void;
  clear(): void;
}

/**
 * Between kafkajs's fetches and the handlers. Messages over the flow limits are held here, not
 * left to be fetched (and decoded) again: a partition is paused while anything of it is held
 * (`holding`), so what is held stays within one fetch per partition. Resuming earlier (at half a
 * fetch, to have the next fetch on its way sooner) held more and measured slower: the held
 * messages outlive young-generation collections and are copied and promoted. The queue is read by
 * position, so taking from the front of a large fetch never copies the rest.
 */
export function createFetchBuffer<L extends FetchLane>({ lane: laneOf, room, take, holding }: FetchBufferOptions<L>): FetchBuffer<L> {
  /** `holding`: what `holding` was last told. */
  const held = new Map<string, { topic: string; partition: number; messages: KafkaMessage[]; next: number; holding: boolean }>();
  const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;
  let feeding: NodeJS.Immediate | undefined;

  function feedOne(key: string, lane: L): void {
    const queue = held.get(key);
    if (!queue) return;
    const free = room(lane);
    if (free === 0) return;
    const taken = queue.messages.slice(queue.next, queue.next + free);
    queue.next += taken.length;
    const left = queue.messages.length - queue.next;
    if (left === 0) held.delete(key);
    if (taken.length > 0) take(lane, taken);
    if (queue.holding && left === 0) {
      queue.holding = false;
      holding(lane, false);
    }
  }

  return {
    accept(lane, batch, resolveOffset) {
      const from = lane.nextOffset;
      const first = batch.messages[0];
      // Offsets rise within a batch: when the first is new, all are (the usual case, no filtering).
      const fresh =
        from === undefined || first === undefined || BigInt(first.offset) >= from
          ? batch.messages
          : batch.messages.filter((m) => BigInt(m.offset) >= from);
      const end = BigInt(batch.lastOffset()) + 1n;
      if (lane.nextOffset === undefined || end > lane.nextOffset) lane.nextOffset = end;
      resolveOffset(batch.lastOffset());
      if (fresh.length === 0) return;
      const key = keyOf(lane.topic, lane.partition);
      const queue = held.get(key);
      const entry = {
        topic: lane.topic,
        partition: lane.partition,
        messages: queue ? [...queue.messages.slice(queue.next), ...fresh] : fresh,
        next: 0,
        holding: queue?.holding ?? false,
      };
      held.set(key, entry);
      feedOne(key, lane);
      // Paused only here: kafkajs waits for this batch before it fetches this partition again, so
      // no fetch of it is in flight whose data a pause would have kafkajs drop (flow-control.ts).
      if (!entry.holding && held.get(key) === entry) {
        entry.holding = true;
        holding(lane, true);
      }
    },
    feed() {
      if (feeding || held.size === 0) return;
      feeding = setImmediate(() => {
        feeding = undefined;
        for (const [key, queue] of held) {
          const lane = laneOf(queue.topic, queue.partition);
          if (lane) feedOne(key, lane);
          else held.delete(key);
        }
      });
    },
    drop(topic, partition) {
      held.delete(keyOf(topic, partition));
    },
    clear() {
      held.clear();
      if (feeding) clearImmediate(feeding);
      feeding = undefined;
    },
  };
}
