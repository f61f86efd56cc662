import type { Kafka } from 'kafkajs';
import type { Logger } from '../log.js';
import { createChangelog, readChangelog, type Changelog } from '../persist/changelog.js';
import { createChangelogFold } from '../state/changelog-records.js';
import { createStateStore, type StateStore } from '../state/store.js';

/**
 * The partitions of a deployment's state that one member owns (src/cluster/deployment.ts decides
 * which): for each, its changelog writer, transactional under the partition's own id, and the
 * store restored from it. Taking a partition fences its earlier owners; giving it up closes both.
 */
export interface OwnedPartition {
  partition: number;
  changelog: Changelog;
  store: StateStore;
  /** False while the group rebalances: the partition may be another member's by now. */
  serving: boolean;
}

export interface OwnedPartitionsOptions {
  kafka: Kafka;
  topic: string;
  /** The deployment's name: partition p is written under `stateTransactionalId(name, p)`. */
  name: string;
  /** Names (exact, `prefix*`, `*`) of the persisted objects, and the matcher made from them. */
  persist: readonly string[];
  isShared: (name: string) => boolean;
  lingerMs: number;
  logger: Logger;
  /** A write of this partition's changelog failed (fenced, or the brokers refused it): the deployment gives it up. */
  onWriteFailed(partition: number, changelog: Changelog, error: unknown): void;
}

export interface Restored {
  partitions: number[];
  records: number;
  ms: number;
  /** The restored objects and their sizes. */
  objects: { name: string; size: number }[];
}

/** A restore under way: which partitions, how many records read so far, since when. */
export interface RestoreProgress {
  partitions: number[];
  records: number;
  startedAt: string;
}

export interface OwnedPartitions {
  /** The restore under way, if one is. */
  restoring(): RestoreProgress | undefined;
  has(partition: number): boolean;
  get(partition: number): OwnedPartition | undefined;
  /** The store of a partition this member serves now. */
  serving(partition: number): StateStore | undefined;
  /** Every partition held (restored), served or not. */
  held(): OwnedPartition[];
  /** The partitions served now, in order. */
  served(): number[];
  /** The stores of the partitions served now. */
  servingStores(): StateStore[];
  /**
   * Takes the partitions not held yet: opens each one's changelog (fencing its earlier owners),
   * writes a marker into each, replays them all in one pass up to their markers, and builds their
   * stores. `serving` says whether they may be served at once (no rebalance began meanwhile).
   * Resolves undefined when there was nothing to take.
   */
  restore(partitions: readonly number[], count: number, serving: () => boolean): Promise<Restored | undefined>;
  /** Gives partitions up: their stores close (calls waiting on them fail as retriable), then their changelogs. Resolves with those it held. */
  release(partitions: readonly number[]): Promise<number[]>;
  /** Until the next assignment, serve nothing. */
  pause(): void;
}

/** The transactional id the owner of a partition of a deployment's state writes under: taking it fences the previous owner. */
export const stateTransactionalId = (deployment: string, partition: number) => `wharf.cluster.${deployment}.state.${partition}`;

export function createOwnedPartitions(options: OwnedPartitionsOptions): OwnedPartitions {
  const { kafka, topic, name, persist, isShared, lingerMs, logger, onWriteFailed } = options;
  const owned = new Map<number, OwnedPartition>();
  let progress: RestoreProgress | undefined;
  const closeAll = async (stores: Iterable<StateStore>, changelogs: Changelog[]) => {
    for (const store of stores) store.close();
    await Promise.all(changelogs.map((c) => c.close().catch(() => undefined)));
  };

  return {
    restoring: () => (progress ? { ...progress, partitions: [...progress.partitions] } : undefined),
    has: (partition) => owned.has(partition),
    get: (partition) => owned.get(partition),
    serving(partition) {
      const here = owned.get(partition);
      return here?.serving ? here.store : undefined;
    },
    held: () => [...owned.values()],
    served: () => [...owned.values()].filter((h) => h.serving).map((h) => h.partition),
    servingStores: () => [...owned.values()].filter((h) => h.serving).map((h) => h.store),

    async restore(partitions, count, serving) {
      const fresh = partitions.filter((p) => !owned.has(p));
      if (fresh.length === 0) return undefined;
      const started = Date.now();
      const changelogs = fresh.map((partition) =>
        createChangelog({
          kafka,
          topic,
          logger,
          transactionalId: stateTransactionalId(name, partition),
          partition,
          partitions: count,
          topicReady: true,
        }),
      );
      const stores = new Map<number, StateStore>();
      let records: number;
      const mine: RestoreProgress = { partitions: fresh, records: 0, startedAt: new Date(started).toISOString() };
      progress = mine;
      try {
        // Opening a partition's changelog takes its transactional id over: every earlier owner is fenced.
        await Promise.all(changelogs.map((changelog) => changelog.open()));
        const ends = new Map(await Promise.all(changelogs.map(async (c) => [c.partition, await c.mark()] as const)));
        const folds = new Map(fresh.map((p) => [p, createChangelogFold(isShared)]));
        records = await readChangelog({
          kafka,
          topic,
          ends,
          apply: (partition, key, value, where) => {
            folds.get(partition)!.add(key, value, where);
            mine.records++;
          },
        });
        for (const changelog of changelogs) {
          const fold = folds.get(changelog.partition)!;
          const sink = {
            write: (batch: Parameters<Changelog['write']>[0]) =>
              changelog.write(batch).catch((error: unknown) => {
                onWriteFailed(changelog.partition, changelog, error);
                throw error;
              }),
          };
          const persisted = { names: persist, restored: fold.snapshot(), restoredOps: fold.ops, lingerMs, sink };
          stores.set(changelog.partition, createStateStore({ logger, persist: persisted }));
        }
      } catch (error) {
        await closeAll(stores.values(), changelogs);
        throw error;
      } finally {
        if (progress === mine) progress = undefined;
      }
      const now = serving();
      for (const changelog of changelogs) {
        const store = stores.get(changelog.partition)!;
        owned.set(changelog.partition, { partition: changelog.partition, changelog, store, serving: now });
      }
      const objects = [...stores.values()].flatMap((store) => store.describe().map(({ name: object, size }) => ({ name: object, size })));
      return { partitions: fresh, records, ms: Date.now() - started, objects };
    },

    async release(partitions) {
      const given = partitions.flatMap((p) => owned.get(p) ?? []);
      for (const here of given) {
        owned.delete(here.partition);
        here.serving = false;
        here.store.close();
      }
      await Promise.all(given.map((here) => here.changelog.close().catch(() => undefined)));
      return given.map((here) => here.partition);
    },

    pause() {
      for (const here of owned.values()) here.serving = false;
    },
  };
}
