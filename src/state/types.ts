/**
 * The typed face of shared state: what a worker (through createStateClient) and the supervisor's
 * main thread (through store.local) both see. Every call is async because, in a worker, it is.
 */

export const STATE_KINDS = ['map', 'list', 'value', 'counter', 'lock', 'semaphore', 'event', 'queue', 'namespace'] as const;
export type StateKind = (typeof STATE_KINDS)[number];

/** What shared state holds: JSON. Object properties that are `undefined` count as absent. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

/** One mutation of one named object, as watchers see it. */
export interface StateChange {
  name: string;
  kind: StateKind;
  /** set, delete, clear, append, add, acquire, release, expire, put, get, … ; `drop` when the object itself was deleted. */
  op: string;
  key?: string | number;
  value?: unknown;
  /** Milliseconds since the epoch, on the owner's clock. */
  at: number;
}

export type StateListener = (change: StateChange) => void;

/** One entry of `map.batch`: applied in order, with nothing from anyone else in between. */
export type MapBatchOp<V> =
  | { op: 'get'; key: string }
  | { op: 'has'; key: string }
  | { op: 'set'; key: string; value: V }
  | { op: 'setIfAbsent'; key: string; value: V }
  | { op: 'compareAndSet'; key: string; expected: V | undefined; value: V | undefined }
  | { op: 'delete'; key: string };

export interface UpdateOptions {
  /** Compare-and-set attempts before giving up with ERR_STATE_CONTENTION; default 1,000. */
  maxAttempts?: number;
}

export interface SharedMap<V> {
  get(key: string): Promise<V | undefined>;
  set(key: string, value: V): Promise<void>;
  /** Sets only when the key is absent; true when this call set it. */
  setIfAbsent(key: string, value: V): Promise<boolean>;
  /** Sets `next` only if the current value deep-equals `expected` (undefined: absent; next undefined: delete). */
  compareAndSet(key: string, expected: V | undefined, next: V | undefined): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  has(key: string): Promise<boolean>;
  keys(): Promise<string[]>;
  entries(): Promise<[string, V][]>;
  size(): Promise<number>;
  clear(): Promise<void>;
  /** Read-modify-write without a lock: runs `fn` here and retries with compare-and-set until it wins. */
  update(key: string, fn: (current: V | undefined) => V | undefined, options?: UpdateOptions): Promise<V | undefined>;
  /** Several operations as one atomic step; results in the same order (get → value, set → undefined, others → boolean). */
  batch(ops: MapBatchOp<V>[]): Promise<unknown[]>;
}

export interface SharedList<V> {
  /** Appends in order; resolves to the new length. */
  append(...values: V[]): Promise<number>;
  /** Negative indexes count from the end. */
  get(index: number): Promise<V | undefined>;
  slice(start?: number, end?: number): Promise<V[]>;
  length(): Promise<number>;
  clear(): Promise<void>;
}

export interface SharedValue<V> {
  get(): Promise<V | undefined>;
  set(value: V): Promise<void>;
  compareAndSet(expected: V | undefined, next: V): Promise<boolean>;
  update(fn: (current: V | undefined) => V, options?: UpdateOptions): Promise<V>;
}

/** An integer in shared memory: add and get cost no message once the counter's slot is known. */
export interface SharedCounter {
  /** Adds `n` (a safe integer, default 1) and resolves to the new total. */
  add(n?: number): Promise<number>;
  get(): Promise<number>;
  set(value: number): Promise<void>;
}

export interface LeaseOptions {
  /** Give up waiting after this long with a TimeoutError (ERR_TIMEOUT); 0 = only if free now; default: wait. */
  timeoutMs?: number;
  /** Released by the owner after this long even if the holder never calls release(). */
  leaseMs?: number;
}

export interface LeaseHandle {
  readonly name: string;
  readonly token: number;
  /** When the owner will take it back (ms since epoch), or null for no lease. */
  readonly expiresAt: number | null;
  /** False when it had already been taken back (lease expired, holder released). */
  release(): Promise<boolean>;
  /** Renews the lease from now; false when it was already taken back. */
  extend(leaseMs?: number): Promise<boolean>;
}

export interface LockInfo {
  held: boolean;
  holder?: string;
  expiresAt?: number | null;
  waiting: number;
}

export interface SharedLock {
  /** Default lease 30 s; waiters are served first come, first served. */
  acquire(options?: LeaseOptions): Promise<LeaseHandle>;
  /** acquire, run `fn`, release, whatever `fn` does. */
  withLock<T>(fn: () => T | Promise<T>, options?: LeaseOptions): Promise<T>;
  info(): Promise<LockInfo>;
}

export interface SharedSemaphore {
  /** One permit; no lease unless leaseMs is given. */
  acquire(options?: LeaseOptions): Promise<LeaseHandle>;
  withPermit<T>(fn: () => T | Promise<T>, options?: LeaseOptions): Promise<T>;
  available(): Promise<number>;
}

export interface SharedEvent {
  set(): Promise<void>;
  clear(): Promise<void>;
  isSet(): Promise<boolean>;
  /** Resolves when set (at once if it is); rejects with TimeoutError after timeoutMs. */
  wait(options?: { timeoutMs?: number }): Promise<void>;
}

export interface QueueOptions {
  /** Most items held; fixed when the queue is created (default 1,000). */
  capacity?: number;
}

export interface SharedQueue<V> {
  /** Waits while full; rejects with TimeoutError after timeoutMs. */
  put(value: V, options?: { timeoutMs?: number }): Promise<void>;
  /** Waits while empty; rejects with TimeoutError after timeoutMs (0: only if an item is there now). */
  get(options?: { timeoutMs?: number }): Promise<V>;
  size(): Promise<number>;
}

export interface SharedNamespace<T extends object> {
  get<K extends keyof T & string>(field: K): Promise<T[K] | undefined>;
  set<K extends keyof T & string>(field: K, value: T[K]): Promise<void>;
  delete(field: keyof T & string): Promise<boolean>;
  /** Sets several fields as one step. */
  assign(fields: Partial<T>): Promise<void>;
  toObject(): Promise<Partial<T>>;
}

export interface SharedState {
  map<V = unknown>(name: string): SharedMap<V>;
  list<V = unknown>(name: string): SharedList<V>;
  value<V = unknown>(name: string): SharedValue<V>;
  counter(name: string): SharedCounter;
  lock(name: string): SharedLock;
  semaphore(name: string, permits: number): SharedSemaphore;
  event(name: string): SharedEvent;
  queue<V = unknown>(name: string, options?: QueueOptions): SharedQueue<V>;
  namespace<T extends object = Record<string, unknown>>(name: string): SharedNamespace<T>;
  /** Every change of `name` (or of everything, with undefined); resolves once subscribed. */
  watch(name: string | undefined, listener: StateListener): Promise<() => void>;
}

/** A JSON snapshot of one object, as describe/get/snapshot/restore use it. */
export interface ObjectSnapshot {
  kind: StateKind;
  value: unknown;
}
