import { afterEach, describe, expect, it } from 'vitest';
import { createStateStore, type StateStore } from '../../../src/state/store.js';

/** The store's semantics through `store.local`, the same API workers get, in one thread. */
let store: StateStore;
afterEach(() => store?.close());

function fresh(options?: Parameters<typeof createStateStore>[0]): StateStore {
  store = createStateStore(options);
  return store;
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string; name: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; name: string };
  }
  throw new Error('expected a rejection');
}

describe('kinds', () => {
  it('fixes an object’s kind at creation and says so when a name is reused as another kind', async () => {
    const { local } = fresh();
    await local.map('conversation').set('a', 1);
    const error = await rejection(local.list('conversation').append(1));
    expect(error.code).toBe('ERR_STATE_KIND');
    expect(error.message).toBe(
      'State object "conversation" is a map, not a list. Use state.map("conversation"), or pick another name for the list.',
    );
    expect((await rejection(local.counter('conversation').add())).code).toBe('ERR_STATE_KIND');
    expect(() => store.set('conversation', [1], 'list')).toThrow(/is a map, not a list/);
    expect(await local.map('conversation').get('a')).toBe(1);
  });

  it('rejects names that are empty or too long', async () => {
    const { local } = fresh();
    expect((await rejection(local.value('').get())).message).toMatch(/name must be a string of 1 to 256 characters; got ""/);
    expect((await rejection(local.value('x'.repeat(257)).get())).code).toBe('ERR_STATE_NAME');
  });
});

describe('JSON values', () => {
  class Exchange {
    text = 'hi';
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;

  it.each([
    ['a function', { handler: () => 1 }, '$.handler: a function'],
    ['a symbol', [Symbol('s')], '$[0]: a symbol'],
    ['a Date', { at: new Date(0) }, '$.at: a Date (store date.toISOString())'],
    ['a Map', new Map(), '$: a Map object'],
    ['a class instance', new Exchange(), '$: a Exchange object'],
    ['a cycle', cyclic, '$.self: a circular reference'],
    ['NaN', { n: NaN }, '$.n: NaN (JSON numbers are finite)'],
    ['Infinity', [1, Infinity], '$[1]: Infinity (JSON numbers are finite)'],
    ['a bigint', 10n, '$: a bigint (use a number or a string)'],
    ['undefined', undefined, '$: undefined (delete the key instead, or store null)'],
    ['a sparse array', [1, , 3], '$[1]: a hole in a sparse array'], // eslint-disable-line no-sparse-arrays
  ])('refuses %s with ERR_STATE_VALUE naming where it is', async (_what, value, where) => {
    const { local } = fresh();
    const error = await rejection(local.map('m').set('k', value as never));
    expect(error.code).toBe('ERR_STATE_VALUE');
    expect(error.message).toBe(
      `map "m" key "k" value is not JSON: ${where}. Shared state holds JSON values (objects, arrays, strings, finite numbers, booleans, null); send data, not code.`,
    );
    expect(await local.map('m').size()).toBe(0);
  });

  it('refuses non-JSON through every writing call, and operator writes too', async () => {
    const { local } = fresh();
    const fn = () => 1;
    const calls = [
      local.map('m').setIfAbsent('k', fn),
      local.map('m').compareAndSet('k', undefined, fn),
      local.map('m').batch([{ op: 'set', key: 'k', value: fn }]),
      local.list('l').append(1, fn),
      local.value('v').set(fn),
      local.value('v').compareAndSet(undefined, fn),
      local.queue('q').put(fn),
      local.namespace<{ f: unknown }>('n').set('f', fn),
      local.namespace('n').assign({ f: fn }),
    ];
    for (const call of calls) expect((await rejection(call)).code).toBe('ERR_STATE_VALUE');
    expect(() => store.set('v', { f: fn })).toThrow(/is not JSON: \$\.f: a function/);
    expect(() => store.restore({ m: { kind: 'map', value: { k: new Date() } } })).toThrow(/a Date/);
  });

  it('treats undefined object fields as absent, like JSON', async () => {
    const { local } = fresh();
    await local.value('v').set({ a: 1, b: undefined });
    expect(await local.value('v').compareAndSet({ a: 1 }, { a: 2 })).toBe(true);
    expect(store.get('v')).toEqual({ kind: 'value', value: { a: 2 } });
  });

  it('copies values in and out of the main thread, so callers never share the store’s objects', async () => {
    const { local } = fresh();
    const value = { items: [1] };
    await local.map('m').set('k', value);
    value.items.push(2);
    const read = (await local.map<{ items: number[] }>('m').get('k'))!;
    read.items.push(3);
    expect(await local.map('m').get('k')).toEqual({ items: [1] });
    const snapshot = store.get('m')!.value as Record<string, { items: number[] }>;
    snapshot.k!.items.push(4);
    expect(await local.map('m').get('k')).toEqual({ items: [1] });
  });

  it('keeps "__proto__" and "constructor" as plain keys', async () => {
    const { local } = fresh();
    await local.map('m').set('__proto__', { polluted: true });
    await local.map('m').set('constructor', 1);
    expect(await local.map('m').get('__proto__')).toEqual({ polluted: true });
    expect(await local.map('m').keys()).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    store.restore(store.snapshot());
    expect(await local.map('m').get('__proto__')).toEqual({ polluted: true });
  });
});

describe('map, list, value, namespace', () => {
  it('map: compare-and-set by deep equality, with undefined meaning absent', async () => {
    const map = fresh().local.map<{ n: number }>('m');
    expect(await map.setIfAbsent('a', { n: 1 })).toBe(true);
    expect(await map.setIfAbsent('a', { n: 2 })).toBe(false);
    expect(await map.compareAndSet('a', { n: 2 }, { n: 3 })).toBe(false);
    expect(await map.compareAndSet('a', { n: 1 }, { n: 3 })).toBe(true);
    expect(await map.compareAndSet('b', undefined, { n: 1 })).toBe(true);
    expect(await map.compareAndSet('b', { n: 1 }, undefined)).toBe(true);
    expect(await map.has('b')).toBe(false);
    expect(await map.entries()).toEqual([['a', { n: 3 }]]);
    expect(await map.update('a', (current) => ({ n: current!.n + 1 }))).toEqual({ n: 4 });
    expect(await map.delete('a')).toBe(true);
    expect(await map.delete('a')).toBe(false);
    expect(await map.size()).toBe(0);
  });

  it('map: a batch runs atomically, and a malformed batch changes nothing', async () => {
    const map = fresh().local.map<number>('m');
    await map.set('x', 1);
    expect(
      await map.batch([
        { op: 'get', key: 'x' },
        { op: 'set', key: 'y', value: 2 },
        { op: 'compareAndSet', key: 'x', expected: 1, value: 10 },
        { op: 'setIfAbsent', key: 'y', value: 3 },
        { op: 'delete', key: 'nope' },
        { op: 'has', key: 'y' },
      ]),
    ).toEqual([1, undefined, true, false, false, true]);
    const error = await rejection(map.batch([{ op: 'set', key: 'z', value: 1 }, { op: 'explode', key: 'z' } as never]));
    expect(error.code).toBe('ERR_STATE_ARGUMENT');
    expect(error.message).toMatch(/batch entry 1 must be \{op, key, …\} with op one of get, has, set/);
    expect(await map.has('z')).toBe(false);
  });

  it('map: update gives up with ERR_STATE_CONTENTION after maxAttempts lost races', async () => {
    const map = fresh().local.map<number>('m');
    await map.set('n', 0);
    let round = 0;
    const error = await rejection(
      map.update(
        'n',
        (current) => {
          // Someone else always writes between our read and our compare-and-set.
          void map.set('n', ++round * 100);
          return (current ?? 0) + 1;
        },
        { maxAttempts: 3 },
      ),
    );
    expect(error.code).toBe('ERR_STATE_CONTENTION');
    expect(error.message).toMatch(/lost the compare-and-set race 3 times/);
  });

  it('list: appends in order, reads by index (negative from the end) and slices', async () => {
    const list = fresh().local.list<string>('l');
    expect(await list.append('a')).toBe(1);
    expect(await list.append('b', 'c')).toBe(3);
    expect(await list.get(-1)).toBe('c');
    expect(await list.get(7)).toBeUndefined();
    expect(await list.slice(1)).toEqual(['b', 'c']);
    expect(await list.length()).toBe(3);
    expect((await rejection(list.get(1.5))).message).toBe('list "l" .get index must be a safe integer; got 1.5.');
  });

  it('value and namespace', async () => {
    const { local } = fresh();
    const value = local.value<number>('v');
    expect(await value.get()).toBeUndefined();
    expect(await value.compareAndSet(undefined, 1)).toBe(true);
    expect(await value.update((n) => (n ?? 0) * 10)).toBe(10);
    const ns = local.namespace<{ host: string; port: number }>('cfg');
    await ns.set('host', 'localhost');
    await ns.assign({ port: 9092 });
    expect(await ns.get('port')).toBe(9092);
    expect(await ns.delete('host')).toBe(true);
    expect(await ns.toObject()).toEqual({ port: 9092 });
  });
});

describe('counters', () => {
  it('adds integers only', async () => {
    const counter = fresh().local.counter('c');
    expect(await counter.add()).toBe(1);
    expect(await counter.add(41)).toBe(42);
    expect(await counter.add(-2)).toBe(40);
    await counter.set(7);
    expect(await counter.get()).toBe(7);
    expect((await rejection(counter.add(0.5))).message).toBe('counter "c" .add n must be a safe integer; got 0.5.');
  });

  it('says what to do when the store has as many counters as it may', async () => {
    const { local } = fresh({ counters: { initial: 1, max: 2 } });
    await local.counter('a').add();
    await local.counter('b').add();
    const error = await rejection(local.counter('c').add());
    expect(error.code).toBe('ERR_STATE_CAPACITY');
    expect(error.message).toBe(
      'Cannot create counter "c": the store already has 2 counters, its maximum. Reuse counter names (a map of numbers suits per-key counts), or raise counters.max in createStateStore.',
    );
    // A deleted counter keeps its slot for its name: re-creating it needs no new slot.
    expect(store.delete('a')).toBe(true);
    expect(await local.counter('a').get()).toBe(0);
  });

  it.each([
    [{ initial: 0 }, 'counters.initial must be a positive integer; got 0.'],
    [{ initial: 8, max: 4 }, 'counters.max must be an integer >= counters.initial (8); got 4.'],
  ])('checks counters options %j', (counters, message) => {
    expect(() => createStateStore({ counters })).toThrow(message);
  });
});
