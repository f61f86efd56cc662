import { ConfigError, WharfError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import type { Logger } from '../log.js';
import { createChangelog, type Changelog } from './changelog.js';
import { createChangelogFold, createNameMatcher } from '../state/changelog-records.js';
import { createStateStore, type StateStore, type StateStoreOptions } from '../state/store.js';
import { isTopicName, TOPIC_NAME_RULE } from '../kafka/topic-name.js';

/**
 * Opening the shared state of a supervisor: when objects are persisted, replay their changelog
 * and build the store from it, before any worker exists; at shutdown, after the workers drained,
 * wait for the last acknowledgements and disconnect.
 */
export interface PersistSettings {
  /** Names (exact, `prefix*`, or `*`) of objects backed by the changelog; empty: none. */
  persist: string[];
  /** The changelog topic. Two deployments on one cluster need two topics. */
  topic: string;
  /** Extra wait before a batch of changes is written (default 0). */
  lingerMs: number;
  /**
   * Partitions the changelog topic is created with (default 12): a deployment splits its persisted
   * objects over them, each partition served by one member (src/cluster/). An existing topic keeps
   * the count it has.
   */
  partitions: number;
}

export const DEFAULT_STATE_PARTITIONS = 12;

export const DEFAULT_STATE_TOPIC = 'wharf.state.default';

/** The config file's `state` section (src/config/schema.ts; docs/state.md). */
export interface StateConfig {
  persist?: string[];
  topic?: string;
  lingerMs?: number;
  partitions?: number;
}

/**
 * Settings from config < environment: `WHARF_STATE_PERSIST` (comma-separated names; empty for
 * none), `WHARF_STATE_TOPIC` and `WHARF_STATE_PARTITIONS` override the config's `state.persist`,
 * `state.topic` and `state.partitions`.
 */
export function persistSettings(config: { source: string; state?: StateConfig }, env: NodeJS.ProcessEnv = process.env): PersistSettings {
  const fromEnv = env.WHARF_STATE_PERSIST?.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const persist = fromEnv ?? config.state?.persist ?? [];
  createNameMatcher(persist, fromEnv ? 'WHARF_STATE_PERSIST' : 'state.persist');
  const topic = env.WHARF_STATE_TOPIC?.trim() || config.state?.topic || DEFAULT_STATE_TOPIC;
  if (!isTopicName(topic)) {
    throw new ConfigError(`The state changelog topic must be a Kafka topic name (${TOPIC_NAME_RULE}); got ${JSON.stringify(topic)}.`, {
      context: { field: 'state.topic' },
    });
  }
  const partitionsText = env.WHARF_STATE_PARTITIONS?.trim();
  const partitions = partitionsText ? Number(partitionsText) : (config.state?.partitions ?? DEFAULT_STATE_PARTITIONS);
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1_000) {
    throw new ConfigError(`WHARF_STATE_PARTITIONS must be a whole number from 1 to 1000; got ${JSON.stringify(partitionsText)}.`, {
      context: { field: 'state.partitions' },
    });
  }
  return { persist, topic, lingerMs: config.state?.lingerMs ?? 0, partitions };
}

export interface StatePersistence {
  store: StateStore;
  /** Undefined when nothing is persisted. */
  changelog?: Changelog;
  /** What the replay found: records read, objects restored with their sizes, names skipped. */
  restored: { records: number; ms: number; objects: Record<string, number>; skipped: string[] };
  /**
   * Waits until every persisted change is acknowledged (at most `timeoutMs`), then disconnects.
   * Call it after the workers drained and before store.close(); rejects if changes were left unwritten.
   */
  close(timeoutMs?: number): Promise<void>;
}

export interface OpenOptions {
  settings: PersistSettings;
  brokers: readonly string[];
  logger: Logger;
  clientId?: string;
  store?: Omit<StateStoreOptions, 'logger' | 'persist'>;
}

export async function openStatePersistence({
  settings,
  brokers,
  logger,
  clientId = 'wharf',
  store: storeOptions = {},
}: OpenOptions): Promise<StatePersistence> {
  const none = { records: 0, ms: 0, objects: {}, skipped: [] };
  if (settings.persist.length === 0)
    return { store: createStateStore({ ...storeOptions, logger }), restored: none, close: async () => undefined };

  const started = Date.now();
  const kafka = createKafka({ brokers, logger, clientId: `${clientId}-state` });
  const changelog = createChangelog({ kafka, topic: settings.topic, logger });
  await changelog.open();
  let store: StateStore;
  let restored: StatePersistence['restored'];
  try {
    const fold = createChangelogFold(createNameMatcher(settings.persist));
    const records = await changelog.replay(fold.add);
    const snapshot = fold.snapshot();
    store = createStateStore({
      ...storeOptions,
      logger,
      persist: { names: settings.persist, sink: changelog, restored: snapshot, lingerMs: settings.lingerMs },
    });
    const objects = Object.fromEntries(store.describe().map((o) => [o.name, o.size]));
    restored = { records, ms: Date.now() - started, objects, skipped: [...fold.skipped] };
  } catch (error) {
    await changelog.close().catch(() => undefined);
    throw error;
  }
  logger.info(
    { component: 'state', topic: settings.topic, persist: settings.persist, ...restored },
    `shared state restored from ${settings.topic}`,
  );
  if (restored.skipped.length > 0)
    logger.warn(
      { component: 'state', skipped: restored.skipped },
      'the changelog holds objects that are no longer persisted; they were not restored',
    );

  return {
    store,
    changelog,
    restored,
    async close(timeoutMs = 30_000) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new WharfError('ERR_TIMEOUT', `Persisted changes were not acknowledged by ${settings.topic} within ${timeoutMs} ms.`, {
                retriable: true,
              }),
            ),
          timeoutMs,
        );
      });
      try {
        await Promise.race([store.flush(), late]);
      } finally {
        clearTimeout(timer);
        await changelog.close().catch(() => undefined);
      }
    },
  };
}
