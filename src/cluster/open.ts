import type { AdminApi } from '../admin/api.js';
import { connectAdmin } from '../admin/client.js';
import { adminStateApi } from '../admin/state.js';
import type { Logger } from '../log.js';
import type { PersistSettings, StatePersistence } from '../persist/open.js';
import { createStateStore, type StateStore } from '../state/store.js';
import { createDeployment, type Deployment } from './deployment.js';

/**
 * The shared state a supervisor serves its workers: its own store, and, when objects are
 * persisted, the deployment they belong to (every supervisor of the same `cluster.name`; a lone
 * supervisor is a deployment of one). Workers and the admin socket see one store either way:
 * calls on persisted objects go to the deployment, which serves them here while this supervisor
 * owns the state, or on the member that does.
 */
export interface SharedStateHandle {
  store: StateStore;
  /** Undefined when nothing is persisted (nothing to share: the store is this supervisor's alone). */
  deployment?: Deployment;
  /** What the last restore here found (the owner restores; a standby restored nothing). */
  restored(): StatePersistence['restored'];
  /** Joins the deployment, advertising where this supervisor's admin socket is; resolves once the state is served. */
  join(advertise: { address: string; keyFile?: string }): Promise<void>;
  /** After the workers drained: the last writes acknowledged, then leave the deployment. */
  close(timeoutMs?: number): Promise<void>;
}

export interface OpenSharedStateOptions {
  settings: PersistSettings;
  /** The deployment's name (`cluster.name`); default: the changelog topic's name. */
  clusterName?: string;
  brokers: readonly string[];
  logger: Logger;
  clientId?: string;
  /** How long a dead owner keeps the state before another member takes it (the config's kafka.sessionTimeoutMs). */
  sessionTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const NONE = { records: 0, ms: 0, objects: {}, skipped: [] };

export function openSharedState({
  settings,
  clusterName,
  brokers,
  logger,
  clientId,
  sessionTimeoutMs,
  env = process.env,
}: OpenSharedStateOptions): SharedStateHandle {
  if (settings.persist.length === 0) {
    return { store: createStateStore({ logger }), restored: () => NONE, join: async () => undefined, close: async () => undefined };
  }
  const deployment = createDeployment({
    name: clusterName ?? settings.topic,
    topic: settings.topic,
    persist: settings.persist,
    lingerMs: settings.lingerMs,
    brokers,
    clientId,
    logger,
    authkey: env.WHARF_AUTHKEY || undefined,
    sessionTimeoutMs,
  });
  const store = createStateStore({ logger, shared: deployment.route });
  return {
    store,
    deployment,
    restored() {
      const owned = deployment.owned();
      if (!owned) return NONE;
      const { records = 0, ms = 0 } = deployment.lastRestore() ?? {};
      return { records, ms, objects: Object.fromEntries(owned.describe().map((o) => [o.name, o.size])), skipped: [] };
    },
    join: (advertise) => deployment.join(advertise),
    async close(timeoutMs) {
      await deployment.close(timeoutMs);
      store.close();
    },
  };
}

/**
 * The admin socket's view of the state: this supervisor's own objects, and the deployment's
 * shared ones, read and written where they are owned (here, or on the owner over its admin socket).
 * Watches are the store's own, which follow shared objects wherever they are owned.
 */
export function clusterStateApi(handle: SharedStateHandle): AdminApi['state'] {
  const local = adminStateApi(handle.store);
  const { deployment } = handle;
  if (!deployment) return local;
  const owned = () => deployment.owned();
  const remote = async () => {
    const owner = await deployment.owner();
    if (!owner || owner.self) return undefined;
    return connectAdmin({ address: owner.address, ...(owner.keyFile ? { keyFile: owner.keyFile } : {}), timeoutMs: 5_000 });
  };
  async function onOwner<T>(
    here: (store: StateStore) => T,
    there: (client: Awaited<ReturnType<typeof connectAdmin>>) => Promise<T>,
    none: T,
  ) {
    const store = owned();
    if (store) return here(store);
    const client = await remote();
    if (!client) return none;
    try {
      return await there(client);
    } finally {
      await client.close();
    }
  }
  const isShared = (name: string) => deployment.route.covers(name, 'map');
  return {
    ...local,
    describe: () =>
      onOwner(
        (store) => [...local.describe(), ...store.describe()],
        async (client) => [...local.describe(), ...(await client.state.describe()).filter((o) => isShared(o.name))],
        local.describe(),
      ) as unknown as ReturnType<AdminApi['state']['describe']>,
    get: (name) =>
      (isShared(name)
        ? onOwner(
            (store): { kind: string; value: unknown } | undefined => store.get(name),
            (client) => client.state.get(name),
            undefined,
          )
        : local.get(name)) as ReturnType<AdminApi['state']['get']>,
    set: (name, value, kind) =>
      (isShared(name)
        ? onOwner(
            (store) => store.set(name, value, kind as never),
            (client) => client.state.set(name, value, kind),
            undefined,
          )
        : local.set(name, value, kind)) as void,
    delete: (name) =>
      (isShared(name)
        ? onOwner(
            (store) => store.delete(name),
            (client) => client.state.delete(name),
            false,
          )
        : local.delete(name)) as boolean,
    snapshot: () =>
      onOwner(
        (store) => ({ ...local.snapshot(), ...store.snapshot() }),
        async (client) => ({
          ...local.snapshot(),
          ...Object.fromEntries(Object.entries(await client.state.snapshot()).filter(([name]) => isShared(name))),
        }),
        local.snapshot(),
      ) as unknown as ReturnType<AdminApi['state']['snapshot']>,
  };
}
