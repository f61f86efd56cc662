import { WharfError } from '../errors.js';
import { intArg, jsonArg, keyArg, optionalIntArg } from './args.js';
import { jsonEqual } from './json.js';
import { describeObject, loadError, opTable, type ObjectEnv, type StateObject } from './object.js';

/** The plain-data kinds: map, namespace, list, value. None of them waits for anything. */

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function entriesOf(value: unknown, env: ObjectEnv, kind: 'map' | 'namespace'): Map<string, unknown> {
  if (!isPlainObject(value)) throw loadError(kind, env.name, 'an object of entries');
  const entries = new Map<string, unknown>();
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) entries.set(key, jsonArg(field, `${describeObject(kind, env.name)} key ${JSON.stringify(key)}`));
  }
  return entries;
}

const BATCH_OPS = new Set(['get', 'has', 'set', 'setIfAbsent', 'compareAndSet', 'delete']);

export function createMap(env: ObjectEnv): StateObject {
  let entries = new Map<string, unknown>();
  const where = (op: string) => `${describeObject('map', env.name)} .${op}`;

  function set(key: string, value: unknown): void {
    entries.set(key, value);
    env.emit('set', key, value);
  }
  function remove(key: string): boolean {
    if (!entries.delete(key)) return false;
    env.emit('delete', key);
    return true;
  }
  function compareAndSet(key: string, expected: unknown, next: unknown): boolean {
    if (!jsonEqual(entries.get(key), expected)) return false;
    if (next === undefined) remove(key);
    else set(key, next);
    return true;
  }
  function checkBatch(ops: unknown): { op: string; key: string; value?: unknown; expected?: unknown }[] {
    if (!Array.isArray(ops)) throw new WharfError('ERR_STATE_ARGUMENT', `${where('batch')} takes an array of operations.`);
    // Every entry is checked before any is applied, so a bad batch changes nothing.
    return ops.map((entry: unknown, i) => {
      if (!isPlainObject(entry) || typeof entry.op !== 'string' || !BATCH_OPS.has(entry.op)) {
        throw new WharfError(
          'ERR_STATE_ARGUMENT',
          `${where('batch')} entry ${i} must be {op, key, …} with op one of ${[...BATCH_OPS].join(', ')}.`,
        );
      }
      const key = keyArg(entry.key, `${where('batch')} entry ${i} key`);
      if (entry.op === 'set' || entry.op === 'setIfAbsent') jsonArg(entry.value, `${where('batch')} entry ${i} value`);
      if (entry.op === 'compareAndSet') {
        if (entry.expected !== undefined) jsonArg(entry.expected, `${where('batch')} entry ${i} expected`);
        if (entry.value !== undefined) jsonArg(entry.value, `${where('batch')} entry ${i} value`);
      }
      return { op: entry.op, key, value: entry.value, expected: entry.expected };
    });
  }

  return {
    kind: 'map',
    ops: opTable({
      get: ([key]) => entries.get(keyArg(key, where('get') + ' key')),
      has: ([key]) => entries.has(keyArg(key, where('has') + ' key')),
      set: ([key, value]) => void set(keyArg(key, where('set') + ' key'), jsonArg(value, `${where('set')} value`)),
      setIfAbsent: ([key, value]) => {
        const k = keyArg(key, where('setIfAbsent') + ' key');
        jsonArg(value, `${where('setIfAbsent')} value`);
        if (entries.has(k)) return false;
        set(k, value);
        return true;
      },
      // With `withCurrent`, a lost race also answers the current value, so update() retries in one round trip.
      compareAndSet: ([key, expected, next, withCurrent]) => {
        const k = keyArg(key, where('compareAndSet') + ' key');
        if (expected !== undefined) jsonArg(expected, `${where('compareAndSet')} expected`);
        if (next !== undefined) jsonArg(next, `${where('compareAndSet')} next`);
        const ok = compareAndSet(k, expected, next);
        return withCurrent === true ? [ok, ok ? next : entries.get(k)] : ok;
      },
      delete: ([key]) => remove(keyArg(key, where('delete') + ' key')),
      keys: () => [...entries.keys()],
      entries: () => [...entries.entries()],
      size: () => entries.size,
      clear: () => {
        entries.clear();
        env.emit('clear');
      },
      batch: ([ops]) =>
        checkBatch(ops).map(({ op, key, value, expected }) => {
          if (op === 'get') return entries.get(key);
          if (op === 'has') return entries.has(key);
          if (op === 'set') return void set(key, value);
          if (op === 'setIfAbsent') return entries.has(key) ? false : (set(key, value), true);
          if (op === 'compareAndSet') return compareAndSet(key, expected, value);
          return remove(key);
        }),
    }),
    size: () => entries.size,
    snapshot: () => Object.fromEntries(entries),
    load: (value) => {
      entries = entriesOf(value, env, 'map');
      env.emit('load', undefined, value);
    },
  };
}

export function createNamespace(env: ObjectEnv): StateObject {
  let fields = new Map<string, unknown>();
  const where = (op: string) => `${describeObject('namespace', env.name)} .${op}`;
  return {
    kind: 'namespace',
    ops: opTable({
      get: ([field]) => fields.get(keyArg(field, where('get') + ' field')),
      set: ([field, value]) => {
        const key = keyArg(field, where('set') + ' field');
        fields.set(key, jsonArg(value, `${where('set')} field ${JSON.stringify(key)}`));
        env.emit('set', key, value);
      },
      delete: ([field]) => {
        const key = keyArg(field, where('delete') + ' field');
        if (!fields.delete(key)) return false;
        env.emit('delete', key);
        return true;
      },
      assign: ([object]) => {
        const next = entriesOf(object, env, 'namespace');
        for (const [key, value] of next) fields.set(key, value);
        env.emit('assign', undefined, object);
      },
      toObject: () => Object.fromEntries(fields),
    }),
    size: () => fields.size,
    snapshot: () => Object.fromEntries(fields),
    load: (value) => {
      fields = entriesOf(value, env, 'namespace');
      env.emit('load', undefined, value);
    },
  };
}

export function createList(env: ObjectEnv): StateObject {
  let items: unknown[] = [];
  const where = (op: string) => `${describeObject('list', env.name)} .${op}`;
  return {
    kind: 'list',
    ops: opTable({
      append: (values) => {
        values.forEach((value, i) => jsonArg(value, `${where('append')} value ${i}`));
        for (const value of values) items.push(value);
        env.emit('append', items.length - values.length, values);
        return items.length;
      },
      get: ([index]) => items.at(intArg(index, where('get') + ' index')),
      slice: ([start, end]) => items.slice(optionalIntArg(start, where('slice') + ' start'), optionalIntArg(end, where('slice') + ' end')),
      length: () => items.length,
      clear: () => {
        items = [];
        env.emit('clear');
      },
    }),
    size: () => items.length,
    snapshot: () => items.slice(),
    load: (value) => {
      if (!Array.isArray(value)) throw loadError('list', env.name, 'an array');
      items = jsonArg<unknown[]>(value, describeObject('list', env.name)).slice();
      env.emit('load', undefined, value);
    },
  };
}

export function createValue(env: ObjectEnv): StateObject {
  let current: unknown;
  const where = (op: string) => `${describeObject('value', env.name)} .${op}`;
  function set(value: unknown): void {
    current = value;
    env.emit('set', undefined, value);
  }
  return {
    kind: 'value',
    ops: opTable({
      get: () => current,
      set: ([value]) => set(jsonArg(value, `${where('set')} value`)),
      compareAndSet: ([expected, next, withCurrent]) => {
        if (expected !== undefined) jsonArg(expected, `${where('compareAndSet')} expected`);
        jsonArg(next, `${where('compareAndSet')} next`);
        const ok = jsonEqual(current, expected);
        if (ok) set(next);
        return withCurrent === true ? [ok, current] : ok;
      },
    }),
    size: () => (current === undefined ? 0 : 1),
    // JSON has no undefined: a value never set reads back as null after a snapshot.
    snapshot: () => (current === undefined ? null : current),
    load: (value) => set(jsonArg(value, describeObject('value', env.name))),
  };
}
