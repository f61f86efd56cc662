import type { AdminApi } from '../admin/api.js';
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
    partitions: settings.partitions,
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
      const stores = deployment.ownedStores();
      if (stores.length === 0) return NONE;
      const { records = 0, ms = 0 } = deployment.lastRestore() ?? {};
      const objects = stores.flatMap((owned) => owned.describe());
      return { records, ms, objects: Object.fromEntries(objects.map((o) => [o.name, o.size])), skipped: [] };
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
 * shared ones, read and written where their partitions are served (here, or on their owners over
 * their admin sockets). Watches are the store's own, which follow shared objects wherever they are
 * served; a watch of one partition (another member asking) is the deployment's.
 */
export function clusterStateApi(handle: SharedStateHandle): AdminApi['state'] {
  const local = adminStateApi(handle.store);
  const { deployment } = handle;
  if (!deployment) return local;
  const { view } = deployment;
  const isShared = (name: string) => deployment.route.covers(name, 'map');
  // The socket's session awaits what these return; the AdminApi's types are the store's synchronous ones.
  const later = <T>(promise: Promise<unknown>) => promise as unknown as T;
  return {
    ...local,
    describe: () => later(view.describe().then((shared) => [...local.describe(), ...shared])),
    get: (name) => (isShared(name) ? later(view.get(name)) : local.get(name)),
    set: (name, value, kind) => (isShared(name) ? later(view.set(name, value, kind)) : local.set(name, value, kind)),
    delete: (name) => (isShared(name) ? later(view.delete(name)) : local.delete(name)),
    snapshot: () => later(view.snapshot().then((shared) => ({ ...local.snapshot(), ...shared }))),
    watch: (name, listener, partition) =>
      partition === undefined ? local.watch(name, listener) : view.watchPartition(partition, name, listener),
  };
}
