import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { createCounterSlots, type CounterSlotsOptions } from './counters.js';
import { createSharedState, type StateTransport } from './handles.js';
import { copyJson } from './json.js';
import { NO_SLOT, type ObjectInit } from './messages.js';
import { PENDING, type CallContext, type StateObject } from './object.js';
import { checkPersistedCall, createNameMatcher, opKey, opRecord, tombstone, type AppliedOp } from './changelog-records.js';
import { createPersister, type ChangelogSink } from './persister.js';
import { createRegistry } from './registry.js';
import { serveConnection, type Connection, type SharedRoute } from './serve.js';

export type { SharedRoute } from './serve.js';
import type { ObjectSnapshot, SharedState, StateChange, StateKind, StateListener } from './types.js';
import { createWatchRegistry } from './watchers.js';

export type { ObjectSnapshot, SharedState, StateChange, StateKind, StateListener } from './types.js';

/**
 * The owner of shared state, in the supervisor's main thread: the analogue of Python's
 * multiprocessing.Manager. Workers get a MessagePort each (`connect`) and reach the same objects
 * through createStateClient; the main thread uses `local`, the same API without messages.
 */
export interface StateStoreOptions {
  logger?: Logger;
  counters?: CounterSlotsOptions;
  /**
   * Counter adds in workers cost no message, so the owner only sees them by looking: while anyone
   * watches a counter, its value is sampled this often and a change is announced (default 100 ms).
   */
  counterSampleMs?: number;
  /** Objects backed by a compacted Kafka topic (see docs/state.md, "Persistence"). */
  persist?: PersistOptions;
  /**
   * Objects a deployment of several supervisors shares (src/cluster/): calls on them go to
   * `shared`, which serves them where their owner is, instead of to this store's own objects.
   */
  shared?: SharedRoute;
}

export interface PersistOptions {
  /** Names of persisted objects: exact names, `prefix*` patterns, or `*` for all. */
  names: readonly string[];
  /** Where changelog records go (src/persist/changelog.ts); resolves once Kafka acknowledged them. */
  sink: ChangelogSink;
  /** The state read back from the changelog: loaded before anyone is served, and not written again. */
  restored?: Record<string, ObjectSnapshot>;
  /** Extra wait before a batch of records is sealed (default 0: the next turn of the event loop). */
  lingerMs?: number;
  /** Operations applied with an id, read back from the changelog with `restored` (executeOnce). */
  restoredOps?: ReadonlyMap<string, AppliedOp>;
  /** How long an applied operation's id is remembered, and a retry of it answered (default 2 min: twice a deployment's routing deadline). */
  opTtlMs?: number;
}

export interface StateStore {
  /** A new channel for one worker: serves one end here, returns the other to transfer into the worker. */
  connect(holderId: string): MessagePort;
  /** That worker ended: release its locks and permits, cancel its waits, close its port. Idempotent. */
  releaseHolder(holderId: string): void;
  /**
   * One operation in the name of `holderId`, without a port (the admin socket's `state.call`);
   * what it comes to hold is freed by releaseHolder(holderId). Returns the result, or a promise
   * of it when the call waits or its object is persisted; throws a WharfError it refuses.
   */
  execute(holderId: string, kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit): unknown;
  /**
   * execute, applied at most once per `opId`: a retry of an id already applied answers what the
   * first answered and changes nothing. The id is written to the changelog with the change it
   * made, so a store restored from it deduplicates too (a deployment's failover: src/cluster/).
   */
  executeOnce(opId: string, holderId: string, kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit): unknown;
  local: SharedState;
  describe(): { name: string; kind: StateKind; size: number }[];
  get(name: string): ObjectSnapshot | undefined;
  set(name: string, value: unknown, kind?: StateKind): void;
  delete(name: string): boolean;
  snapshot(): Record<string, ObjectSnapshot>;
  restore(snapshot: Record<string, ObjectSnapshot>): void;
  watch(name: string | undefined, listener: (change: StateChange) => void): () => void;
  /** The counters' shared memory, for a worker started without a connection (normally not needed). */
  sharedBuffer(): SharedArrayBuffer;
  /** Holders with a live connection. */
  holders(): string[];
  /** Whether `name` is backed by the changelog. */
  isPersisted(name: string): boolean;
  /** Resolves once every change to a persisted object so far is acknowledged by Kafka (at once when none is persisted). */
  flush(): Promise<void>;
  close(): void;
}

/** The holder name of the supervisor's own `local` calls. */
export const LOCAL_HOLDER = '@supervisor';

export function createStateStore({
  logger,
  counters: counterOptions,
  counterSampleMs = 100,
  persist,
  shared,
}: StateStoreOptions = {}): StateStore {
  const log = logger?.child({ component: 'state' });
  const counters = createCounterSlots(counterOptions);
  const watchers = createWatchRegistry(log);
  /** Last counter totals announced, by slot: the sampler announces only what moved since. */
  const announced = new Map<number, number>();
  const objects = new Map<string, StateObject>();
  /** Moves when a name may change kind; workers' probes for posted writes are good for one generation (serve.ts). */
  const generation = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const persister =
    persist &&
    createPersister({
      isPersisted: createNameMatcher(persist.names, 'persist.names'),
      objects,
      sink: persist.sink,
      lingerMs: persist.lingerMs,
      logger: log?.child({ component: 'changelog' }),
    });
  const isPersisted = (name: string) => persister?.isPersisted(name) ?? false;
  const registry = createRegistry({
    objects,
    counters,
    watchers,
    generation,
    persister,
    logger: log,
    onCounterWrite: (slot, total) => announced.set(slot, total),
  });
  if (persist?.restored) {
    registry.restore(persist.restored, true);
    // Read from the changelog, so already in it: recorded as written, not written again.
    persister!.adopt();
  }
  const connections = new Map<string, Connection>();
  /** executeOnce's ids: what each answered (restored or applied here), or its answer while it runs. */
  const applied = new Map<string, AppliedOp | Promise<unknown>>(persist?.restoredOps);
  const opTtlMs = persist?.opTtlMs ?? 120_000;
  const opSweeper =
    persist &&
    setInterval(
      () => {
        const old = Date.now() - opTtlMs;
        for (const [id, entry] of applied) {
          if (entry instanceof Promise || entry.at > old) continue;
          applied.delete(id);
          persister!.append(tombstone(opKey(id)));
        }
      },
      Math.min(60_000, opTtlMs),
    );
  opSweeper?.unref();
  let sampler: NodeJS.Timeout | undefined;
  let closed = false;
  /** A message of a worker, or a drain, is being handled: nothing else is read or served until it ends. */
  let busy = false;

  /**
   * How every worker message is handled (serve.ts), and what precedes anything else the store
   * serves (`connection` undefined, `drainPosted`): first the writes the other workers have
   * posted and the store not yet read. A worker's posted write settles when it leaves, so whatever
   * is served after that moment must find it applied; the event loop reads ports in no particular
   * order, this puts them in the order the workers saw. A message is handled whole: a call made
   * meanwhile from this thread (a watcher's) reads nothing more, so no port is read out of order.
   */
  function serving(connection: Connection | undefined, handle: () => void): void {
    if (busy) return handle();
    busy = true;
    try {
      for (const other of connections.values()) if (other !== connection) other.drain();
      handle();
    } finally {
      busy = false;
    }
  }

  const drainPosted = () => serving(undefined, () => undefined);

  function sampleCounters(): void {
    for (const [name, object] of registry.objects) {
      if (object.kind !== 'counter' || !watchers.wants(name)) continue;
      const slot = counters.slotOf(name)!;
      const total = Number(Atomics.load(counters.view, slot));
      if (announced.get(slot) === total) continue;
      announced.set(slot, total);
      watchers.emit({ name, kind: 'counter', op: 'add', value: total, at: Date.now() });
    }
  }

  function watch(name: string | undefined, listener: StateListener): () => void {
    const unsubscribe = watchers.add(name, listener);
    if (sampler === undefined && !closed) {
      // Starting from what is there now: adds made before anyone watched are not news.
      for (const [objectName, object] of registry.objects) {
        if (object.kind === 'counter') announced.set(counters.slotOf(objectName)!, object.snapshot() as number);
      }
      sampler = setInterval(() => (watchers.size === 0 ? stopSampler() : sampleCounters()), counterSampleMs);
      sampler.unref();
    }
    const unsubscribeShared = shared?.watch(name, listener);
    if (!unsubscribeShared) return unsubscribe;
    return () => {
      unsubscribe();
      unsubscribeShared();
    };
  }

  /** For listeners in this thread: each gets its own copy, so none can change the store's values. */
  function watchCopies(name: string | undefined, listener: StateListener): () => void {
    return watch(name, (change) => listener(change.value === undefined ? change : { ...change, value: copyJson(change.value) }));
  }

  function stopSampler(): void {
    if (sampler !== undefined) clearInterval(sampler);
    sampler = undefined;
  }

  function releaseHolder(holderId: string): void {
    const connection = connections.get(holderId);
    if (connection) {
      connections.delete(holderId);
      connection.close();
    }
    registry.releaseHolder(holderId);
    shared?.release(holderId);
    log?.debug({ holderId }, 'state holder released');
  }

  /**
   * One operation, with copies in and out so callers never share the store's objects. Answers at
   * once when it can; a wait, or any answer about a persisted object (it waits until Kafka has
   * what it reflects, as for workers: serve.ts), comes as a promise.
   */
  function execute(
    holderId: string,
    kind: StateKind,
    name: string,
    op: string,
    args: unknown[],
    init?: ObjectInit,
    settled?: (value: unknown) => void,
  ): unknown {
    drainPosted();
    if (shared?.covers(name, kind)) return shared.call(holderId, kind, name, op, args, init);
    const durable = persister?.covers(name, kind) === true;
    if (durable) checkPersistedCall(kind, name, op, args);
    // Made only when needed: most calls answer at once, and this is the admin socket's hot path.
    let later: { promise: Promise<unknown>; resolve(value: unknown): void; reject(error: unknown): void } | undefined;
    const defer = () => {
      if (later) return later;
      let resolve!: (value: unknown) => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<unknown>((ok, fail) => ((resolve = ok), (reject = fail)));
      return (later = { promise, resolve, reject });
    };
    const settle = (value: unknown) => {
      settled?.(value);
      const { resolve, reject } = defer();
      if (!durable) return resolve(value);
      queueMicrotask(() => {
        const barrier = persister!.barrier();
        if (barrier === undefined) resolve(value);
        else barrier.then(() => resolve(value), reject);
      });
    };
    const call: CallContext = { holderId, resolve: (value) => settle(copyJson(value)), reject: (error) => defer().reject(error) };
    const result = registry.execute(call, kind, name, op, copyJson(args), init);
    if (result === PENDING) return defer().promise;
    if (!durable && !settled) return copyJson(result);
    call.resolve(result);
    return defer().promise;
  }

  function executeOnce(
    opId: string,
    holderId: string,
    kind: StateKind,
    name: string,
    op: string,
    args: unknown[],
    init?: ObjectInit,
  ): unknown {
    const known = applied.get(opId);
    if (known instanceof Promise) return known;
    if (known !== undefined) return copyJson(known.result);
    const before = persister?.changes ?? 0;
    let entry: AppliedOp | undefined;
    // Only a call that changed something needs remembering: a read done twice is the same read.
    let changed = persister === undefined;
    // The id goes into the same changelog batch as the change, so both land or neither does.
    const record = (result: unknown) => {
      entry = { result, at: Date.now() };
      if (persister && persister.changes !== before) {
        changed = true;
        persister.append(opRecord(opId, entry));
      }
    };
    let answer: Promise<unknown>;
    try {
      answer = Promise.resolve(execute(holderId, kind, name, op, args, init, record));
    } catch (error) {
      return Promise.reject(error);
    }
    // Until it settles a retry shares this answer; one that failed (not durable) may be tried again.
    applied.set(opId, answer);
    answer.then(
      (value) => {
        if (applied.get(opId) !== answer) return;
        if (changed) applied.set(opId, entry ?? { result: value, at: Date.now() });
        else applied.delete(opId);
      },
      () => {
        if (applied.get(opId) === answer) applied.delete(opId);
      },
    );
    return answer;
  }

  /** The main thread's transport: the same calls, always as promises. */
  const localTransport: StateTransport = {
    call: (kind, name, op, args, init) => {
      try {
        return Promise.resolve(execute(LOCAL_HOLDER, kind, name, op, args, init));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    watch: async (name, listener) => watchCopies(name, listener),
    counters: {
      cached: (name) => (registry.objects.get(name)?.kind !== 'counter' ? undefined : isPersisted(name) ? NO_SLOT : counters.slotOf(name)),
      resolve: (name) => localTransport.call('counter', name, 'slot', []) as Promise<number>,
      view: () => counters.view,
      added(name, slot, total) {
        announced.set(slot, total);
        if (watchers.wants(name)) watchers.emit({ name, kind: 'counter', op: 'add', value: total, at: Date.now() });
      },
    },
  };

  return {
    connect(holderId) {
      if (closed) throw new WharfError('ERR_STATE_CLOSED', 'The state store is closed; it cannot connect new workers.');
      if (typeof holderId !== 'string' || holderId.length === 0 || holderId === LOCAL_HOLDER) {
        throw new WharfError(
          'ERR_STATE_ARGUMENT',
          `connect(holderId) needs a non-empty worker id other than ${LOCAL_HOLDER}; got ${JSON.stringify(holderId)}.`,
        );
      }
      if (connections.has(holderId)) {
        // One connection per worker: a second connect under the same id means the first worker is gone.
        log?.warn({ holderId }, 'state holder connected again; releasing what its previous connection held');
        releaseHolder(holderId);
      }
      const { port1, port2 } = new MessageChannel();
      const connection = serveConnection({
        holderId,
        port: port1,
        counters: counters.buffer,
        generation,
        registry,
        serving,
        watch,
        durability: persister,
        shared,
        logger: log,
        onClosed: (closedConnection) => {
          // Only if it is still the live connection of that id (a reconnect already released the old one).
          if (connections.get(holderId) === closedConnection) releaseHolder(holderId);
        },
      });
      connections.set(holderId, connection);
      return port2;
    },
    releaseHolder,
    execute: (holderId, kind, name, op, args, init) => execute(holderId, kind, name, op, args, init),
    executeOnce,
    local: createSharedState(localTransport),
    // Each reads or changes what workers may have posted writes to: those come first.
    describe: () => (drainPosted(), registry.describe()),
    get: (name) => (drainPosted(), registry.get(name)),
    set: (name, value, kind) => (drainPosted(), registry.set(name, value, kind)),
    delete: (name) => (drainPosted(), registry.delete(name)),
    snapshot: () => (drainPosted(), registry.snapshot()),
    restore: (snapshot) => (drainPosted(), registry.restore(snapshot)),
    watch: watchCopies,
    sharedBuffer: () => counters.buffer,
    holders: () => [...connections.keys()],
    isPersisted,
    flush: async () => persister?.flush(),
    close() {
      if (closed) return;
      closed = true;
      stopSampler();
      if (opSweeper) clearInterval(opSweeper);
      persister?.close();
      for (const holderId of [...connections.keys()]) releaseHolder(holderId);
      registry.close();
      watchers.clear();
    },
  };
}
