import type { AdminClient } from '../admin/client.js';
import type { StateChange as WireChange } from '../admin/protocol.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { StateChange, StateListener } from '../state/types.js';
import type { Owner } from './assigner.js';

/**
 * Watches of a deployment's shared objects (docs/cluster.md): a watch of one object follows its
 * partition, a watch of everything follows every partition, and another member's watch follows the
 * one partition it asked for. Each partition is watched where it is served now: on this member's
 * store of it, or on its owner's admin socket (`state.watch` with `partition`); when the owner
 * goes away, or this member gains or loses partitions, the watch moves. Changes made while no one
 * served a partition are not replayed.
 */
export interface WatchesOptions {
  /** The changelog's partition count, once the member joined. */
  partitions(): number | undefined;
  partitionOf(name: string): number;
  /** The store of a partition this member serves now. */
  serving(partition: number): StateStore | undefined;
  /** The member serving a partition now (undefined while none does). */
  ownerOf(partition: number): Promise<Owner | undefined>;
  peer(target: Owner): Promise<AdminClient>;
  isShared(name: string): boolean;
  closed(): boolean;
  /** An owner could not be reached: who owns what must be read again. */
  onStale(): void;
  log: Logger;
}

export interface Watches {
  /** Watches `name` (every shared object when undefined; only `partition` when given); returns the unwatch. */
  add(name: string | undefined, listener: StateListener, partition?: number): () => void;
  /** Every watch follows its partitions (those given, or all) to where they are served now. */
  reattach(partitions?: readonly number[]): void;
  /** Detaches every watch (the member is closing). */
  detachAll(): void;
}

interface Watch {
  name: string | undefined;
  listener: StateListener;
  /** Only this partition (a watch another member asked for), else the name's, or all of them. */
  partition?: number;
  attached: Map<number, { detach?: () => void; epoch: number }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

export function createWatches(options: WatchesOptions): Watches {
  const watches = new Set<Watch>();

  function watchedPartitions(watch: Watch): number[] {
    if (watch.partition !== undefined) return [watch.partition];
    const count = options.partitions();
    if (count === undefined) return [];
    if (watch.name !== undefined) return [options.partitionOf(watch.name)];
    return Array.from({ length: count }, (_, p) => p);
  }

  /** (Re)subscribes a watch's partition where it is served now; changes made while no one served it are not replayed. */
  function attach(watch: Watch, partition: number): void {
    let slot = watch.attached.get(partition);
    if (!slot) watch.attached.set(partition, (slot = { epoch: 0 }));
    slot.detach?.();
    slot.detach = undefined;
    const epoch = ++slot.epoch;
    const current = slot;
    if (options.closed() || !watches.has(watch)) return;
    const here = options.serving(partition);
    if (here) {
      current.detach = here.watch(watch.name, watch.listener);
      return;
    }
    void (async () => {
      for (let attempt = 0; epoch === current.epoch && !options.closed(); attempt++) {
        try {
          const target = await options.ownerOf(partition);
          if (target && !target.self) {
            const client = await options.peer(target);
            // The wire's change is the store's (kinds and keys as the owner's store made them).
            const forward = (change: WireChange) => {
              if (options.isShared(change.name)) watch.listener(change as StateChange);
            };
            const handle = await client.state.watch(watch.name, forward, partition);
            if (epoch !== current.epoch) return void handle.unsubscribe().catch(() => undefined);
            current.detach = () => void handle.unsubscribe().catch(() => undefined);
            // The owner went away: follow the next one.
            void client.closed.then(() => epoch === current.epoch && attach(watch, partition));
            return;
          }
          if (target?.self && options.serving(partition)) return attach(watch, partition);
        } catch (error) {
          options.onStale();
          options.log.debug({ err: describeError(error), partition }, 'a watch of shared state is waiting for an owner');
        }
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)));
      }
    })();
  }

  function detachAll(watch: Watch): void {
    for (const slot of watch.attached.values()) {
      slot.epoch++;
      slot.detach?.();
      slot.detach = undefined;
    }
  }

  /** Every watch follows its partitions to where they are served now (after this member gained or lost some). */
  function reattach(partitions?: readonly number[]): void {
    for (const watch of watches) {
      for (const partition of watchedPartitions(watch)) if (!partitions || partitions.includes(partition)) attach(watch, partition);
    }
  }

  function add(name: string | undefined, listener: StateListener, partition?: number): () => void {
    const watch: Watch = { name, listener, partition, attached: new Map() };
    watches.add(watch);
    for (const partition of watchedPartitions(watch)) attach(watch, partition);
    return () => {
      watches.delete(watch);
      detachAll(watch);
    };
  }

  return {
    add,
    reattach,
    detachAll() {
      for (const watch of watches) detachAll(watch);
    },
  };
}
