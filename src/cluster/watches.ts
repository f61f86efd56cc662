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
  /** How to stop listening to each partition, where it listens now. */
  attached: Map<number, () => void>;
}

/** One subscription on the member serving a partition, and the watches of this member listening to it. */
interface Feed {
  partition: number;
  name: string | undefined;
  listeners: Set<StateListener>;
  /** Bumped whenever the subscription is dropped or replaced: an older attempt gives up. */
  epoch: number;
  detach?: () => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

export function createWatches(options: WatchesOptions): Watches {
  const watches = new Set<Watch>();
  /** Subscriptions on other members, by partition and name ('*': every object), shared by the watches. */
  const feeds = new Map<string, Feed>();

  function watchedPartitions(watch: Watch): number[] {
    if (watch.partition !== undefined) return [watch.partition];
    const count = options.partitions();
    if (count === undefined) return [];
    if (watch.name !== undefined) return [options.partitionOf(watch.name)];
    return Array.from({ length: count }, (_, p) => p);
  }

  /** (Re)subscribes a watch's partition where it is served now; changes made while no one served it are not replayed. */
  function attach(watch: Watch, partition: number): void {
    watch.attached.get(partition)?.();
    watch.attached.delete(partition);
    if (options.closed() || !watches.has(watch)) return;
    const here = options.serving(partition);
    watch.attached.set(partition, here ? here.watch(watch.name, watch.listener) : join(partition, watch.name, watch.listener));
  }

  /**
   * Listens to a partition served elsewhere through the feed of (partition, name), opened by the
   * first listener and closed with the last: however many watches a member has, it holds at most
   * one subscription per partition and name on the owner's admin socket (which allows 32 a
   * connection), not one per watch.
   */
  function join(partition: number, name: string | undefined, listener: StateListener): () => void {
    const key = `${partition}/${name ?? '*'}`;
    let feed = feeds.get(key);
    if (!feed) {
      feed = { partition, name, listeners: new Set(), epoch: 0 };
      feeds.set(key, feed);
      subscribe(feed);
    }
    const joined = feed;
    // Its own function per watch: the same listener may be given to two watches.
    const own: StateListener = (change) => listener(change);
    joined.listeners.add(own);
    return () => {
      joined.listeners.delete(own);
      if (joined.listeners.size > 0) return;
      close(joined);
      if (feeds.get(key) === joined) feeds.delete(key);
    };
  }

  function close(feed: Feed): void {
    feed.epoch++;
    feed.detach?.();
    feed.detach = undefined;
  }

  /** Subscribes a feed on its partition's owner now, and follows the owner when it goes away. */
  function subscribe(feed: Feed): void {
    close(feed);
    const epoch = feed.epoch;
    void (async () => {
      for (let attempt = 0; epoch === feed.epoch && !options.closed(); attempt++) {
        try {
          const target = await options.ownerOf(feed.partition);
          if (target && !target.self) {
            const client = await options.peer(target);
            // The wire's change is the store's (kinds and keys as the owner's store made them).
            const forward = (change: WireChange) => {
              if (!options.isShared(change.name)) return;
              for (const listener of feed.listeners) {
                try {
                  listener(change as StateChange);
                } catch (error) {
                  // As the store's own watchers: one that throws must not keep the others from the change.
                  options.log.warn(
                    { err: describeError(error), name: change.name },
                    'a state watcher threw; other watchers still see the change',
                  );
                }
              }
            };
            const handle = await client.state.watch(feed.name, forward, feed.partition);
            if (epoch !== feed.epoch) return void handle.unsubscribe().catch(() => undefined);
            feed.detach = () => void handle.unsubscribe().catch(() => undefined);
            // The owner went away: follow the next one.
            void client.closed.then(() => epoch === feed.epoch && subscribe(feed));
            return;
          }
          // Served here by now: the partition's watches move to this member's store.
          if (target?.self && options.serving(feed.partition)) return reattach([feed.partition]);
        } catch (error) {
          options.onStale();
          options.log.debug({ err: describeError(error), partition: feed.partition }, 'a watch of shared state is waiting for an owner');
        }
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)));
      }
    })();
  }

  function detachAll(watch: Watch): void {
    for (const detach of watch.attached.values()) detach();
    watch.attached.clear();
  }

  /** Every watch follows its partitions to where they are served now (after this member gained or lost some). */
  function reattach(partitions?: readonly number[]): void {
    // Feeds of those partitions are forgotten first, so the watches below open new ones on the
    // owners of now; an old feed closes when its last watch leaves it.
    for (const [key, feed] of feeds) if (!partitions || partitions.includes(feed.partition)) feeds.delete(key);
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
