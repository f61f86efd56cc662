import { describeError, WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallContext, StateObject } from './object.js';
import {
  entryKey,
  entryRecord,
  ENTRY_KINDS,
  objectKey,
  objectRecord,
  PERSISTED_KINDS,
  tombstone,
  type ChangelogRecord,
  type EntryKey,
} from './changelog-records.js';
import type { StateKind } from './types.js';

/**
 * Write-through persistence of the store's persisted objects. Operations mark what they changed
 * (an object, or some of its entries) as dirty; once per turn of the event loop the dirty set is
 * sealed into records holding the values *at sealing time* — the latest value per key, which is
 * what compaction keeps anyway — and written in one go. One write is in flight at a time: changes
 * made meanwhile wait and leave together when it is acknowledged (group commit), so the batch
 * grows with the load instead of the number of round trips.
 *
 * Replies that depend on persisted objects are held until `barrier()` settles (see serve.ts), so a
 * worker only ever sees a persisted change once Kafka has acknowledged it.
 */
export interface ChangelogSink {
  /** Appends the records in this order; resolves once Kafka acknowledged every one (acks=all). */
  write(records: ChangelogRecord[]): Promise<void>;
}

export interface Persister {
  isPersisted(name: string): boolean;
  /** Whether changes to this object go to the changelog: a persisted name, of a kind that persists. */
  covers(name: string, kind: StateKind): boolean;
  /** A persisted object changed (the registry calls this for every mutation it announces). */
  changed(name: string, kind: StateKind, op: string, key?: string | number, value?: unknown): void;
  /** How many changes were announced so far: a call that left it alone changed nothing persisted. */
  readonly changes: number;
  /** A record to write with the next batch, after the objects' own (an applied operation's id). */
  append(record: ChangelogRecord): void;
  /** Throws ERR_STATE_PERSIST once a write failed: persisted objects can no longer change durably, nor be read as durable. */
  check(name: string, kind?: StateKind): void;
  /** Settles once every change made so far is acknowledged; undefined when none is outstanding. */
  barrier(): Promise<void> | undefined;
  /** Takes the objects as they are now as what the changelog holds (right after restoring from it). */
  adopt(): void;
  /** Resolves when every change made so far is acknowledged; rejects if a write failed. */
  flush(): Promise<void>;
  close(): void;
}

export interface PersisterOptions {
  isPersisted(name: string): boolean;
  /** The registry's live objects: records are read from them when a batch is sealed. */
  objects: ReadonlyMap<string, StateObject>;
  sink: ChangelogSink;
  /** Extra wait before sealing a batch, to gather more changes into one write (default 0: the next turn). */
  lingerMs?: number;
  logger?: Logger;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: WharfError): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: WharfError) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  // Someone awaits it, or nobody needed to: a rejection must never become an unhandled one.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const ALL = Symbol('all');
/** Reads go through the objects' own `get` operations, which never wait or mutate. */
const READER: CallContext = { holderId: '@changelog', resolve: () => undefined, reject: () => undefined };

function entryKeysOf(object: StateObject): EntryKey[] {
  if (object.kind === 'list') return Array.from({ length: object.size() }, (_, i) => i);
  return Object.keys(object.snapshot() as Record<string, unknown>);
}

function readEntry(object: StateObject, key: EntryKey): unknown {
  // A dirty key of the wrong type belongs to an earlier object of this name (a list's index in what is now a map).
  if ((object.kind === 'list') !== (typeof key === 'number')) return undefined;
  return object.ops.get('get')!([key], READER);
}

export function createPersister({ isPersisted, objects, sink, lingerMs = 0, logger }: PersisterOptions): Persister {
  /** What the changelog holds, by name: the kind, and the entry keys not tombstoned. */
  const written = new Map<string, { kind: StateKind; keys: Set<EntryKey> }>();
  const dirty = new Map<string, Set<EntryKey> | typeof ALL>();
  let extras: ChangelogRecord[] = [];
  let changes = 0;
  let open: Deferred | undefined;
  let inflight: Promise<void> | undefined;
  let scheduled = false;
  let failure: WharfError | undefined;
  let closed = false;

  function mark(name: string, keys: EntryKey[] | typeof ALL): void {
    const current = dirty.get(name);
    if (current === ALL) return;
    if (keys === ALL) dirty.set(name, ALL);
    else if (current) for (const key of keys) current.add(key);
    else dirty.set(name, new Set(keys));
  }

  /** Records that bring the changelog from `written` to the objects as they are now. */
  function collect(): ChangelogRecord[] {
    const records: ChangelogRecord[] = [];
    for (const [name, keys] of dirty) {
      const found = objects.get(name);
      const live = found && PERSISTED_KINDS.has(found.kind) ? found : undefined;
      const previous = written.get(name);
      if (previous && (!live || live.kind !== previous.kind)) {
        for (const key of previous.keys) records.push(tombstone(entryKey(name, key)));
        if (!live) records.push(tombstone(objectKey(name)));
        written.delete(name);
      }
      if (!live) continue;
      if (!ENTRY_KINDS.has(live.kind)) {
        records.push(objectRecord(name, live.kind, live.snapshot()));
        written.set(name, { kind: live.kind, keys: new Set() });
        continue;
      }
      let state = written.get(name);
      if (!state) {
        state = { kind: live.kind, keys: new Set() };
        written.set(name, state);
        records.push(objectRecord(name, live.kind));
      }
      const candidates = keys === ALL ? new Set([...state.keys, ...entryKeysOf(live)]) : keys;
      for (const key of candidates) {
        const value = readEntry(live, key);
        if (value !== undefined) {
          state.keys.add(key);
          records.push(entryRecord(name, live.kind, key, value));
        } else if (state.keys.delete(key)) {
          records.push(tombstone(entryKey(name, key)));
        }
      }
    }
    dirty.clear();
    records.push(...extras);
    extras = [];
    return records;
  }

  function fail(error: unknown): void {
    failure ??= new WharfError(
      'ERR_STATE_PERSIST',
      `Persisted shared state could not be written to its changelog (${describeError(error)}). Calls on persisted objects are refused from now on; ` +
        'restart the supervisor to restore the state Kafka acknowledged.',
      { cause: error },
    );
    logger?.error({ err: error }, 'changelog write failed: persisted objects are read-only until a restart');
    open?.reject(failure);
    open = undefined;
    dirty.clear();
    extras = [];
  }

  function schedule(): void {
    if (scheduled || inflight || closed || failure) return;
    scheduled = true;
    if (lingerMs > 0) setTimeout(seal, lingerMs);
    else setImmediate(seal);
  }

  function seal(): void {
    scheduled = false;
    const batch = open;
    if (!batch || closed || failure) return;
    open = undefined;
    let records: ChangelogRecord[];
    try {
      records = collect();
    } catch (error) {
      batch.reject(
        new WharfError(
          'ERR_STATE_INTERNAL',
          `Could not build changelog records: ${describeError(error)}. This is a bug in wharf; please report it.`,
          { cause: error },
        ),
      );
      fail(error);
      return;
    }
    if (records.length === 0) return batch.resolve();
    inflight = batch.promise;
    sink.write(records).then(
      () => {
        inflight = undefined;
        batch.resolve();
        if (open) schedule();
      },
      (error: unknown) => {
        inflight = undefined;
        fail(error);
        batch.reject(failure!);
      },
    );
  }

  const covers = (name: string, kind: StateKind) => PERSISTED_KINDS.has(kind) && isPersisted(name);
  const persister: Persister = {
    isPersisted,
    covers,
    get changes() {
      return changes;
    },
    append(record) {
      if (closed || failure) return;
      extras.push(record);
      open ??= deferred();
      schedule();
    },
    changed(name, kind, op, key, value) {
      if (closed || failure || !covers(name, kind)) return;
      changes++;
      if (ENTRY_KINDS.has(kind) && op === 'append' && typeof key === 'number' && Array.isArray(value)) {
        mark(
          name,
          value.map((_, i) => key + i),
        );
      } else if (ENTRY_KINDS.has(kind) && (op === 'set' || op === 'delete') && key !== undefined) {
        mark(name, [key]);
      } else {
        mark(name, ALL);
      }
      open ??= deferred();
      schedule();
    },
    check(name, kind) {
      if (failure && (kind === undefined ? isPersisted(name) : covers(name, kind))) throw failure;
    },
    barrier() {
      if (failure) return Promise.reject(failure);
      return open?.promise ?? inflight;
    },
    adopt() {
      dirty.clear();
      open?.resolve();
      open = undefined;
      for (const [name, object] of objects) {
        if (!isPersisted(name) || !PERSISTED_KINDS.has(object.kind)) continue;
        written.set(name, { kind: object.kind, keys: new Set(ENTRY_KINDS.has(object.kind) ? entryKeysOf(object) : []) });
      }
    },
    async flush() {
      for (let pending = persister.barrier(); pending; pending = persister.barrier()) await pending;
    },
    close() {
      if (closed) return;
      closed = true;
      open?.reject(
        new WharfError(
          'ERR_STATE_CLOSED',
          'The state store closed before these changes reached the changelog; call flush() before close().',
        ),
      );
      open = undefined;
    },
  };
  return persister;
}
