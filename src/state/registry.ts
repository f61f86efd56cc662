import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { createCounter, type CounterSlots } from './counters.js';
import { createList, createMap, createNamespace, createValue } from './data-objects.js';
import { copyJson } from './json.js';
import { createLeases } from './leases.js';
import { isStateKind, type ObjectInit } from './messages.js';
import { describeObject, type CallContext, type ObjectEnv, type StateObject } from './object.js';
import type { Persister } from './persister.js';
import { createEvent, createQueue } from './signals.js';
import type { ObjectSnapshot, StateKind } from './types.js';
import type { WatchRegistry } from './watchers.js';

/**
 * The named objects and the one way to run an operation on one: find or create by name, check
 * the kind, look the operation up in the object's table, run it.
 */
export const MAX_NAME_LENGTH = 256;

export interface Registry {
  readonly objects: ReadonlyMap<string, StateObject>;
  /** The object called `name`, created as a `kind` if there is none; throws ERR_STATE_KIND if it is another kind. */
  ensure(kind: StateKind, name: string, init?: ObjectInit): StateObject;
  /** Runs one operation; returns its result or PENDING (answered later through `call`). Throws WharfError. */
  execute(call: CallContext, kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit): unknown;
  describe(): { name: string; kind: StateKind; size: number }[];
  get(name: string): ObjectSnapshot | undefined;
  set(name: string, value: unknown, kind?: StateKind): void;
  delete(name: string, reason?: WharfError): boolean;
  snapshot(): Record<string, ObjectSnapshot>;
  /** Replaces everything; `fromChangelog`: what the changelog recorded, lock holders included. */
  restore(snapshot: Record<string, ObjectSnapshot>, fromChangelog?: boolean): void;
  releaseHolder(holderId: string): void;
  close(): void;
}

export interface RegistryOptions {
  /** Where the objects live; passed in so persistence can read them too (default: a new map). */
  objects?: Map<string, StateObject>;
  counters: CounterSlots;
  watchers: WatchRegistry;
  /** Owner-side writes to a counter slot, so watchers of counters are not told twice. */
  onCounterWrite(slot: number, total: number): void;
  /**
   * Int32 [generation], moved before anything that can change a name's kind (delete, restore):
   * workers post writes only to objects they probed in the current generation (serve.ts).
   */
  generation?: Int32Array;
  /** Told of every mutation and consulted before every write, when some objects are persisted. */
  persister?: Pick<Persister, 'isPersisted' | 'changed' | 'check'>;
  logger?: Logger;
}

export function kindError(name: string, actual: StateKind, requested: StateKind): WharfError {
  return new WharfError(
    'ERR_STATE_KIND',
    `State object ${JSON.stringify(name)} is a ${actual}, not a ${requested}. Use state.${actual}(${JSON.stringify(name)}), or pick another name for the ${requested}.`,
    { context: { name, kind: actual, requested } },
  );
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new WharfError(
      'ERR_STATE_NAME',
      `A state object's name must be a string of 1 to ${MAX_NAME_LENGTH} characters; got ${JSON.stringify(name)}.`,
      {
        context: { name },
      },
    );
  }
}

/** Creation settings that a snapshot value implies (a restored queue keeps its capacity). */
function initFromValue(kind: StateKind, value: unknown): ObjectInit | undefined {
  const fields = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  if (kind === 'semaphore' && typeof fields.permits === 'number') return { permits: fields.permits };
  if (kind === 'queue' && typeof fields.capacity === 'number') return { capacity: fields.capacity };
  return undefined;
}

export function createRegistry({
  objects = new Map(),
  counters,
  watchers,
  onCounterWrite,
  generation,
  persister,
  logger,
}: RegistryOptions): Registry {
  let closed = false;

  function build(kind: StateKind, name: string, init: ObjectInit | undefined): StateObject {
    checkName(name);
    const env: ObjectEnv = {
      name,
      logger,
      persisted: persister?.isPersisted(name) ?? false,
      emit(op, key, value) {
        persister?.changed(name, kind, op, key, value);
        if (!watchers.wants(name)) return;
        watchers.emit({ name, kind, op, ...(key !== undefined && { key }), ...(value !== undefined && { value }), at: Date.now() });
      },
    };
    switch (kind) {
      case 'map':
        return createMap(env);
      case 'list':
        return createList(env);
      case 'value':
        return createValue(env);
      case 'namespace':
        return createNamespace(env);
      case 'counter':
        return createCounter(env, counters, onCounterWrite);
      case 'lock':
      case 'semaphore':
        return createLeases(env, kind, init);
      case 'event':
        return createEvent(env);
      case 'queue':
        return createQueue(env, init);
    }
  }

  function checkOpen(): void {
    if (closed) throw new WharfError('ERR_STATE_CLOSED', 'The state store is closed; no more operations are served.');
  }

  function install(name: string, object: StateObject, reason: string): void {
    const previous = objects.get(name);
    previous?.dispose?.(
      new WharfError('ERR_STATE_DELETED', `${describeObject(previous.kind, name)} was ${reason}; waits on it are cancelled.`, {
        context: { name },
      }),
    );
    objects.set(name, object);
    if (object.kind === 'counter') onCounterWrite(counters.slotOf(name)!, object.snapshot() as number);
  }

  function snapshotOf(object: StateObject): ObjectSnapshot {
    return { kind: object.kind, value: copyJson(object.snapshot()) };
  }

  function ensure(kind: StateKind, name: string, init: ObjectInit | undefined): StateObject {
    checkOpen();
    persister?.check(name, kind);
    let object = objects.get(name);
    if (object === undefined) {
      object = build(kind, name, init);
      install(name, object, 'created');
    } else if (object.kind !== kind) {
      throw kindError(name, object.kind, kind);
    } else {
      object.checkInit?.(init);
    }
    return object;
  }

  const nextGeneration = () => generation && Atomics.add(generation, 0, 1);

  return {
    objects,
    ensure,
    execute(call, kind, name, op, args, init) {
      const object = ensure(kind, name, init);
      const handler = object.ops.get(op);
      if (handler === undefined) {
        throw new WharfError('ERR_STATE_PROTOCOL', `${describeObject(kind, name)} has no operation ${JSON.stringify(op)}.`, {
          context: { name, kind, op },
        });
      }
      return handler(args, call);
    },
    describe: () => [...objects].map(([name, object]) => ({ name, kind: object.kind, size: object.size() })),
    get(name) {
      const object = objects.get(name);
      return object && snapshotOf(object);
    },
    set(name, value, kind) {
      checkOpen();
      persister?.check(name, objects.get(name)?.kind ?? kind);
      const existing = objects.get(name);
      if (existing && kind !== undefined && existing.kind !== kind) throw kindError(name, existing.kind, kind);
      if (existing) return existing.load(value);
      const chosen = kind ?? 'value';
      if (!isStateKind(chosen)) throw new WharfError('ERR_STATE_KIND', `${JSON.stringify(chosen)} is not a kind of state object.`);
      // Loaded before it is installed, so a value the kind refuses leaves nothing half-made.
      const object = build(chosen, name, initFromValue(chosen, value));
      if (chosen !== 'counter') object.load(value);
      install(name, object, 'created');
      if (chosen === 'counter') object.load(value);
    },
    delete(name, reason) {
      const object = objects.get(name);
      if (!object) return false;
      persister?.check(name, object.kind);
      nextGeneration();
      object.dispose?.(
        reason ??
          new WharfError('ERR_STATE_DELETED', `${describeObject(object.kind, name)} was deleted; waits on it are cancelled.`, {
            context: { name },
          }),
      );
      objects.delete(name);
      persister?.changed(name, object.kind, 'drop');
      if (watchers.wants(name)) watchers.emit({ name, kind: object.kind, op: 'drop', at: Date.now() });
      return true;
    },
    snapshot: () => Object.fromEntries([...objects].map(([name, object]) => [name, snapshotOf(object)])),
    restore(snapshot, fromChangelog = false) {
      checkOpen();
      for (const name of Object.keys(snapshot ?? {})) persister?.check(name);
      if (typeof snapshot !== 'object' || snapshot === null)
        throw new WharfError('ERR_STATE_VALUE', 'A state snapshot must be an object of {kind, value} by name.');
      // Everything is checked and built before anything is replaced: a bad snapshot changes nothing.
      const ready: [string, StateObject | number][] = [];
      for (const [name, entry] of Object.entries(snapshot)) {
        const { kind, value } = (entry ?? {}) as Partial<ObjectSnapshot>;
        if (!isStateKind(kind))
          throw new WharfError('ERR_STATE_VALUE', `Snapshot entry ${JSON.stringify(name)} has no valid kind; got ${JSON.stringify(kind)}.`);
        if (kind === 'counter') {
          checkName(name);
          if (typeof value !== 'number' || !Number.isSafeInteger(value))
            throw new WharfError('ERR_STATE_VALUE', `Snapshot counter ${JSON.stringify(name)} must be a safe integer.`);
          ready.push([name, value]);
          continue;
        }
        const object = build(kind, name, initFromValue(kind, value));
        // From the changelog, a lock keeps its holders (a deployment's new owner serves the same
        // workers). From an operator's snapshot, holders belonged to workers of another run: free.
        if (fromChangelog && object.restore) object.restore(value);
        else if (kind !== 'lock' && kind !== 'semaphore') object.load(value);
        ready.push([name, object]);
      }
      nextGeneration();
      for (const [name, object] of ready) {
        if (typeof object !== 'number') {
          install(name, object, 'replaced by a restore');
          continue;
        }
        const counter = build('counter', name, undefined);
        install(name, counter, 'replaced by a restore');
        counter.load(object);
      }
    },
    releaseHolder(holderId) {
      for (const object of objects.values()) object.releaseHolder?.(holderId);
    },
    close() {
      if (closed) return;
      closed = true;
      const error = new WharfError('ERR_STATE_CLOSED', 'The state store closed; waits are cancelled.');
      for (const object of objects.values()) object.dispose?.(error);
    },
  };
}
