import { z } from 'zod';
import type { AdminClient } from '../admin/client.js';
import { describeError, WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { ObjectSnapshot, StateKind, StateListener } from '../state/types.js';
import type { Owner } from './assigner.js';

/**
 * A deployment's shared objects as the admin socket sees them (`npm run admin -- state`, `set`,
 * `snapshot`, the dashboard): whole objects, wherever their partitions are served. One object's
 * read or write goes to its partition's owner; a listing or snapshot gathers every owner's part
 * (`cluster.state` on each, which answers for the partitions that member serves, and no others).
 */
/** The shared objects as the admin socket sees them, wherever their partitions are served. */
export interface SharedView {
  describe(): Promise<{ name: string; kind: StateKind; size: number }[]>;
  get(name: string): Promise<ObjectSnapshot | undefined>;
  set(name: string, value: unknown, kind?: string): Promise<void>;
  delete(name: string): Promise<boolean>;
  snapshot(): Promise<Record<string, ObjectSnapshot>>;
  /** A watch of one partition (`state.watch` with `partition`, from another member): served here, or followed to its owner. */
  watchPartition(partition: number, name: string | undefined, listener: StateListener): () => void;
}

export interface SharedViewOptions {
  /** The deployment's name, for errors. */
  deployment: string;
  partitionOf(name: string): number;
  /** The store of a partition this member serves now. */
  serving(partition: number): StateStore | undefined;
  servingStores(): StateStore[];
  /** Runs `here` on the partition's store when this member serves it, else `there` on its owner; retried until the routing deadline. */
  onOwner<T>(
    partition: () => number,
    here: (store: StateStore) => T | Promise<T>,
    there: (client: AdminClient) => Promise<T>,
    what: string,
  ): Promise<T>;
  /** Every member serving a part of the state now (this one included). */
  servingMembers(): Promise<Owner[]>;
  peer(member: Owner): Promise<AdminClient>;
  /** A member did not answer: who owns what must be read again. */
  onStale(): void;
  watchPartition: SharedView['watchPartition'];
  log: Logger;
}

/** `cluster.state`: the admin socket's whole-object operations, on the partitions the member serves. */
const stateParams = z.discriminatedUnion('op', [
  z.object({ op: z.literal('describe') }),
  z.object({ op: z.literal('snapshot') }),
  z.object({ op: z.literal('get'), name: z.string().min(1) }),
  z.object({ op: z.literal('delete'), name: z.string().min(1) }),
  z.object({ op: z.literal('set'), name: z.string().min(1), value: z.unknown(), kind: z.string().optional() }),
]);

function notOwner(deployment: string, partition: number): WharfError {
  return new WharfError(
    'ERR_STATE_NOT_OWNER',
    `This supervisor does not serve partition ${partition} of the shared state of deployment ${deployment} now.`,
    { retriable: true },
  );
}

export function createSharedView(options: SharedViewOptions): {
  view: SharedView;
  /** The owner's side of `cluster.state`. */
  serveState(params: unknown): Promise<unknown>;
  /** The store of the partition an object lives in, when this member serves it; else refused as retriable. */
  servingStore(name: string): StateStore;
} {
  const { deployment, partitionOf, serving, servingStores, onOwner, servingMembers, peer, onStale, log } = options;

  function servingStore(objectName: string): StateStore {
    const partition = partitionOf(objectName);
    const store = serving(partition);
    if (!store) throw notOwner(deployment, partition);
    return store;
  }

  async function serveState(params: unknown): Promise<unknown> {
    const parsed = stateParams.safeParse(params);
    if (!parsed.success) throw new WharfError('ERR_BAD_PARAMS', `cluster.state: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    const request = parsed.data;
    const stores = servingStores();
    switch (request.op) {
      case 'describe':
        return stores.flatMap((store) => store.describe());
      case 'snapshot':
        return Object.assign({}, ...stores.map((store) => store.snapshot())) as Record<string, ObjectSnapshot>;
      case 'get':
        return servingStore(request.name).get(request.name) ?? null;
      case 'delete':
        return servingStore(request.name).delete(request.name);
      case 'set':
        servingStore(request.name).set(request.name, request.value, request.kind as StateKind | undefined);
        return null;
    }
  }

  /** describe or snapshot: the parts every serving member holds, gathered. */
  async function gather<T>(here: (stores: StateStore[]) => T[], op: 'describe' | 'snapshot'): Promise<T[]> {
    const parts = await Promise.all(
      (await servingMembers()).map(async (member): Promise<T[]> => {
        if (member.self) return here(servingStores());
        try {
          const answer = await (await peer(member)).call('cluster.state', { op });
          return op === 'describe' ? (answer as T[]) : [answer as T];
        } catch (error) {
          onStale();
          log.debug({ err: describeError(error), member: member.tag }, `could not ${op} a member's part of the shared state`);
          return [];
        }
      }),
    );
    return parts.flat();
  }

  const onPartition = (objectName: string) => () => partitionOf(objectName);
  const view: SharedView = {
    describe: () => gather((stores) => stores.flatMap((store) => store.describe()), 'describe'),
    snapshot: async () =>
      Object.assign(
        {},
        ...(await gather<Record<string, ObjectSnapshot>>((stores) => stores.map((store) => store.snapshot()), 'snapshot')),
      ) as Record<string, ObjectSnapshot>,
    get: (objectName) =>
      onOwner(
        onPartition(objectName),
        (store) => store.get(objectName),
        async (client) =>
          ((await client.call('cluster.state', { op: 'get', name: objectName })) ?? undefined) as ObjectSnapshot | undefined,
        objectName,
      ),
    set: (objectName, value, kind) =>
      onOwner(
        onPartition(objectName),
        (store) => store.set(objectName, value, kind as StateKind | undefined),
        async (client) => void (await client.call('cluster.state', { op: 'set', name: objectName, value, ...(kind ? { kind } : {}) })),
        objectName,
      ),
    delete: (objectName) =>
      onOwner(
        onPartition(objectName),
        (store) => store.delete(objectName),
        async (client) => (await client.call('cluster.state', { op: 'delete', name: objectName })) as boolean,
        objectName,
      ),
    watchPartition: options.watchPartition,
  };
  return { view, serveState, servingStore };
}
