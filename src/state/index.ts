/** Shared state: the store (supervisor main thread) and the client (worker threads). No side effects on import. */
export { createStateStore, LOCAL_HOLDER, type PersistOptions, type StateStore, type StateStoreOptions } from './store.js';
export { DEFAULT_STATE_TOPIC, openStatePersistence, persistSettings, type PersistSettings, type StateConfig, type StatePersistence } from './persist-start.js';
export type { ChangelogSink } from './persist-tracker.js';
export type { ChangelogRecord } from './persist-records.js';
export { createStateClient, type StateClient, type StateClientOptions } from './client.js';
export { STATE_PROTOCOL_VERSION } from './messages.js';
export { DEFAULT_LOCK_LEASE_MS } from './leases.js';
export { DEFAULT_QUEUE_CAPACITY } from './signals.js';
export type { CounterSlotsOptions } from './counters.js';
export * from './types.js';
