import { ConfigError, WharfError } from '../errors.js';
import type { ObjectSnapshot, StateKind } from './types.js';

/**
 * The changelog's record layout, and the fold that turns a changelog back into a snapshot.
 *
 * Keys are chosen so that log compaction, which keeps the latest record per key, keeps exactly the
 * current state:
 *
 *   ["o", name]        → {"kind":"map"}                 one per object: it exists, and its kind
 *                      → {"kind":"counter","value":42}  whole-value kinds carry their value here
 *   ["e", name, key]   → {"kind":"map","value":…}       one per map/namespace entry (key: string)
 *   ["e", name, 3]     → {"kind":"list","value":…}      one per list item (key: its index)
 *   ["m"]              → {"kind":"marker",…}             where the last restore read up to
 *   ["x", opId]        → {"result":…,"at":ms}           an operation applied once (store.executeOnce),
 *                                                        written with its change; tombstoned when old
 *
 * A null value (a tombstone) deletes the entry or the object. Keys are JSON arrays, so no name or
 * map key can make two keys collide, and entries carry their kind so a stale entry of an earlier
 * object of the same name can never be read into a new one.
 */
export interface ChangelogRecord {
  key: string;
  /** JSON text, or null: a tombstone. */
  value: string | null;
}

/**
 * The most JSON a call on a persisted object may carry: one changelog record must fit under the
 * broker's default max.message.bytes (1 MB), key and framing included. A larger call is refused
 * before it changes anything (a write Kafka refuses would give the object's partition up).
 */
export const MAX_PERSISTED_CALL_BYTES = 1_000_000;

/** Throws ERR_STATE_TOO_LARGE for a call on a persisted object whose arguments cannot fit in one changelog record. */
export function checkPersistedCall(kind: StateKind, name: string, op: string, args: readonly unknown[]): void {
  if (args.length === 0) return;
  const bytes = Buffer.byteLength(JSON.stringify(args) ?? '');
  if (bytes <= MAX_PERSISTED_CALL_BYTES) return;
  throw new WharfError(
    'ERR_STATE_TOO_LARGE',
    `${kind} ${JSON.stringify(name)}: ${op} carries ${bytes} bytes of JSON; a persisted object's call must fit in one changelog record (${MAX_PERSISTED_CALL_BYTES} bytes). Nothing was changed; persist smaller values.`,
    { context: { object: name, op, bytes } },
  );
}

/** Kinds with entries of their own; the others are written whole, in their object record. */
export const ENTRY_KINDS: ReadonlySet<StateKind> = new Set(['map', 'namespace', 'list']);
/**
 * Kinds written to the changelog when their name is persisted. Locks and semaphores are written with
 * their holders: a deployment's next owner keeps them held by the same workers (src/cluster/).
 */
export const PERSISTED_KINDS: ReadonlySet<StateKind> = new Set([
  'map',
  'namespace',
  'list',
  'value',
  'counter',
  'event',
  'queue',
  'lock',
  'semaphore',
]);

export type EntryKey = string | number;

export const objectKey = (name: string): string => JSON.stringify(['o', name]);
export const entryKey = (name: string, key: EntryKey): string => JSON.stringify(['e', name, key]);
export const MARKER_KEY = JSON.stringify(['m']);
export const opKey = (opId: string): string => JSON.stringify(['x', opId]);

/** What an operation with an id answered, so a retry of it gets the same answer and changes nothing. */
export interface AppliedOp {
  result: unknown;
  at: number;
}

export function opRecord(opId: string, applied: AppliedOp): ChangelogRecord {
  return { key: opKey(opId), value: JSON.stringify(applied) };
}

export function objectRecord(name: string, kind: StateKind, value?: unknown): ChangelogRecord {
  return { key: objectKey(name), value: JSON.stringify(value === undefined ? { kind } : { kind, value }) };
}

export function entryRecord(name: string, kind: StateKind, key: EntryKey, value: unknown): ChangelogRecord {
  return { key: entryKey(name, key), value: JSON.stringify({ kind, value }) };
}

export const tombstone = (key: string): ChangelogRecord => ({ key, value: null });

/**
 * Which names are persisted: exact names, `prefix*` patterns, or `*` for every object.
 * Throws a ConfigError naming the bad entry (the list comes from config or the environment).
 */
export function createNameMatcher(patterns: readonly string[], field = 'state.persist'): (name: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  patterns.forEach((pattern, i) => {
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.indexOf('*') !== (pattern.endsWith('*') ? pattern.length - 1 : -1)) {
      throw new ConfigError(
        `${field}[${i}] must be an object name, or a prefix ending in "*" (like "tony.*"); got ${JSON.stringify(pattern)}.`,
        { context: { field } },
      );
    }
    if (pattern.endsWith('*')) prefixes.push(pattern.slice(0, -1));
    else exact.add(pattern);
  });
  return (name) => exact.has(name) || prefixes.some((prefix) => name.startsWith(prefix));
}

function restoreError(message: string, context: Record<string, unknown>): WharfError {
  return new WharfError(
    'ERR_STATE_RESTORE',
    `${message} Fix or delete that record (or the changelog topic, losing the state it holds), then start again.`,
    { context },
  );
}

interface Folded {
  kind: StateKind;
  value?: unknown;
  entries: Map<EntryKey, unknown>;
}

export interface ChangelogFold {
  /** Applies one record, in log order. `where` names it in errors ("topic@offset"). */
  add(key: string | null, value: string | null, where: string): void;
  /** The persisted objects as of the last record added, in the form store.restore takes. */
  snapshot(): Record<string, ObjectSnapshot>;
  /** Names found in the log that are not persisted any more, so they were not restored. */
  readonly skipped: ReadonlySet<string>;
  /** Operations applied with an id, by id (store.executeOnce deduplicates retries with them). */
  readonly ops: ReadonlyMap<string, AppliedOp>;
}

function parseKey(key: string | null, where: string): ['o', string] | ['e', string, EntryKey] | ['m'] | ['x', string] {
  let parsed: unknown;
  try {
    parsed = key === null ? null : JSON.parse(key);
  } catch {
    parsed = null;
  }
  const [tag, name, entry] = Array.isArray(parsed) ? (parsed as unknown[]) : [];
  if (tag === 'm' && (parsed as unknown[]).length === 1) return ['m'];
  if (tag === 'x' && typeof name === 'string' && (parsed as unknown[]).length === 2) return ['x', name];
  if (tag === 'o' && typeof name === 'string' && (parsed as unknown[]).length === 2) return ['o', name];
  if (tag === 'e' && typeof name === 'string' && (typeof entry === 'string' || (Number.isSafeInteger(entry) && (entry as number) >= 0)))
    return ['e', name, entry as EntryKey];
  throw restoreError(`Changelog record ${where} has a key that is not a wharf state key: ${JSON.stringify(key)}.`, { where });
}

function parseValue(value: string, where: string): { kind: StateKind; value?: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  const kind = (parsed as { kind?: unknown } | undefined)?.kind;
  if (typeof parsed !== 'object' || parsed === null || typeof kind !== 'string' || !PERSISTED_KINDS.has(kind as StateKind)) {
    throw restoreError(
      `Changelog record ${where} has a value that is not {kind, value} JSON of a persisted kind: ${value.slice(0, 200)}.`,
      { where },
    );
  }
  return parsed as { kind: StateKind; value?: unknown };
}

function parseOp(value: string, where: string): AppliedOp {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as AppliedOp).at !== 'number')
    throw restoreError(`Changelog record ${where} is not an applied operation ({result, at}): ${value.slice(0, 200)}.`, { where });
  return parsed as AppliedOp;
}

/** Rebuilds state from records read in log order; only names `isPersisted` accepts are kept. */
export function createChangelogFold(isPersisted: (name: string) => boolean): ChangelogFold {
  const objects = new Map<string, Folded>();
  const skipped = new Set<string>();
  const ops = new Map<string, AppliedOp>();

  function build(name: string, object: Folded): ObjectSnapshot {
    if (!ENTRY_KINDS.has(object.kind)) return { kind: object.kind, value: object.value ?? null };
    // Entries of another kind are leftovers of an earlier object of this name.
    if (object.kind !== 'list')
      return { kind: object.kind, value: Object.fromEntries([...object.entries].filter(([key]) => typeof key === 'string')) };
    const items: unknown[] = [];
    for (const [index, item] of object.entries) if (typeof index === 'number') items[index] = item;
    for (let i = 0; i < items.length; i++) {
      if (!(i in items))
        throw restoreError(`Changelog list ${JSON.stringify(name)} has item ${items.length - 1} but no item ${i}.`, { name, missing: i });
    }
    return { kind: 'list', value: items };
  }

  return {
    skipped,
    ops,
    add(key, value, where) {
      const parsed = parseKey(key, where);
      if (parsed[0] === 'm') return;
      if (parsed[0] === 'x') {
        if (value === null) ops.delete(parsed[1]);
        else ops.set(parsed[1], parseOp(value, where));
        return;
      }
      const name = parsed[1];
      if (!isPersisted(name)) {
        skipped.add(name);
        return;
      }
      if (parsed[0] === 'o') {
        if (value === null) {
          objects.delete(name);
          return;
        }
        const record = parseValue(value, where);
        const current = objects.get(name);
        // A new kind under the same name: the old object's entries are not its entries.
        const entries = current && current.kind === record.kind ? current.entries : new Map<EntryKey, unknown>();
        objects.set(name, { kind: record.kind, value: record.value, entries });
        return;
      }
      const object = objects.get(name);
      if (value === null) {
        object?.entries.delete(parsed[2]);
        return;
      }
      const record = parseValue(value, where);
      // Entries are always written after their object's record; one of another kind is stale.
      if (object && object.kind === record.kind) object.entries.set(parsed[2], record.value);
    },
    snapshot: () => Object.fromEntries([...objects].map(([name, object]) => [name, build(name, object)])),
  };
}

/**
 * The changelog partition an object lives in when a deployment splits its state over `partitions`
 * (src/cluster/): FNV-1a of the name's UTF-16 code units, so every member computes the same one. An
 * object's records (its entries and the ids of operations on it too) all go to its partition.
 */
export function partitionOf(name: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
