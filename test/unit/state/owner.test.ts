import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createStateClient, type StateClient } from '../../../src/state/client.js';
import type { OwnerMessage } from '../../../src/state/messages.js';
import { createStateStore, type StateStore } from '../../../src/state/store.js';
import type { StateChange } from '../../../src/state/types.js';
import { waitFor } from '../../helpers.js';

/** The supervisor's side: operator reads and writes, snapshots, watching, the wire, closing. */
let store: StateStore;
const clients: StateClient[] = [];
const ports: MessagePort[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const port of ports.splice(0)) port.close();
  store?.close();
});

function client(holderId: string, port = store.connect(holderId)): StateClient {
  const made = createStateClient(port);
  clients.push(made);
  return made;
}

describe('operator API', () => {
  it('describes, reads, writes and deletes objects of every kind', async () => {
    store = createStateStore();
    const { local } = store;
    await local.map('m').set('a', 1);
    await local.list('l').append(1, 2);
    await local.value('v').set('x');
    await local.counter('c').add(5);
    await local.lock('lk').acquire();
    await local.semaphore('s', 3).acquire();
    await local.event('e').set();
    await local.queue('q', { capacity: 4 }).put('job');
    await local.namespace('n').set('f', true);
    expect(store.describe()).toEqual([
      { name: 'm', kind: 'map', size: 1 },
      { name: 'l', kind: 'list', size: 2 },
      { name: 'v', kind: 'value', size: 1 },
      { name: 'c', kind: 'counter', size: 1 },
      { name: 'lk', kind: 'lock', size: 1 },
      { name: 's', kind: 'semaphore', size: 1 },
      { name: 'e', kind: 'event', size: 1 },
      { name: 'q', kind: 'queue', size: 1 },
      { name: 'n', kind: 'namespace', size: 1 },
    ]);
    expect(store.get('c')).toEqual({ kind: 'counter', value: 5 });
    expect(store.get('q')).toEqual({ kind: 'queue', value: { capacity: 4, items: ['job'] } });
    expect(store.get('s')).toMatchObject({
      kind: 'semaphore',
      value: { permits: 3, available: 2, holders: [{ holderId: '@supervisor', expiresAt: null }] },
    });
    expect(store.get('missing')).toBeUndefined();

    store.set('m', { b: 2 });
    expect(await local.map('m').entries()).toEqual([['b', 2]]);
    store.set('fresh', 3, 'counter');
    expect(await local.counter('fresh').add()).toBe(4);
    store.set('plain', { any: ['json'] });
    expect(store.get('plain')).toEqual({ kind: 'value', value: { any: ['json'] } });
    expect(() => store.set('lk', {})).toThrow(
      'lock "lk": holders come and go with their workers, so it cannot be written; delete it to reset it.',
    );
    expect(() => store.set('new-lock', {}, 'lock')).toThrow(/cannot be written/);
    expect(store.get('new-lock')).toBeUndefined();
    expect(() => store.set('l', 'not a list')).toThrow('list "l" can only be set to an array.');
    expect(store.delete('m')).toBe(true);
    expect(store.delete('m')).toBe(false);
  });

  it('cancels waits on an object that is deleted', async () => {
    store = createStateStore();
    const waiting = store.local.event('e').wait();
    store.delete('e');
    await expect(waiting).rejects.toMatchObject({
      code: 'ERR_STATE_DELETED',
      message: 'event "e" was deleted; waits on it are cancelled.',
    });
  });

  it('restores a snapshot into a new store, and a bad snapshot changes nothing', async () => {
    store = createStateStore();
    await store.local.map('m').set('k', { deep: [1] });
    await store.local.counter('c').add(9);
    await store.local.queue('q', { capacity: 3 }).put(1);
    await store.local.semaphore('s', 2).acquire();
    await store.local.lock('l').acquire();
    await store.local.event('e').set();
    const snapshot = JSON.parse(JSON.stringify(store.snapshot()));
    store.close();

    store = createStateStore();
    store.restore(snapshot);
    expect(await store.local.map('m').get('k')).toEqual({ deep: [1] });
    expect(await store.local.counter('c').get()).toBe(9);
    expect(await store.local.queue('q', { capacity: 3 }).get()).toBe(1);
    // Holders were workers of another run: locks and permits come back free.
    expect(await store.local.semaphore('s', 2).available()).toBe(2);
    expect((await store.local.lock('l').info()).held).toBe(false);
    expect(await store.local.event('e').isSet()).toBe(true);

    const before = store.snapshot();
    expect(() => store.restore({ m: { kind: 'map', value: {} }, bad: { kind: 'list', value: 'nope' } })).toThrow(
      /can only be set to an array/,
    );
    expect(() => store.restore({ x: { kind: 'table' as never, value: 1 } })).toThrow('Snapshot entry "x" has no valid kind; got "table".');
    expect(store.snapshot()).toEqual(before);
  });
});

describe('watch', () => {
  it('announces every mutation, survives a throwing listener, and stops on unsubscribe', async () => {
    store = createStateStore();
    const seen: StateChange[] = [];
    const everything: string[] = [];
    store.watch('m', () => {
      throw new Error('listener bug');
    });
    const stop = store.watch('m', (change) => seen.push(change));
    store.watch(undefined, (change) => everything.push(`${change.name}:${change.op}`));
    await store.local.map('m').set('a', { n: 1 });
    await store.local.map('m').delete('a');
    await store.local.list('l').append('x');
    store.delete('l');
    stop();
    await store.local.map('m').set('b', 2);
    expect(seen.map(({ op, key, value, kind, name }) => ({ op, key, value, kind, name }))).toEqual([
      { op: 'set', key: 'a', value: { n: 1 }, kind: 'map', name: 'm' },
      { op: 'delete', key: 'a', value: undefined, kind: 'map', name: 'm' },
    ]);
    expect(everything).toEqual(['m:set', 'm:delete', 'l:append', 'l:drop', 'm:set']);
  });

  it('gives local listeners their own copy of the value', async () => {
    store = createStateStore();
    store.watch('m', (change) => (change.value as number[]).push(99));
    const seen: unknown[] = [];
    await store.local.watch('m', (change) => seen.push(change.value));
    await store.local.map('m').set('k', [1]);
    expect(await store.local.map('m').get('k')).toEqual([1]);
    expect(seen).toEqual([[1]]);
  });

  it('keeps a worker’s posted writes in order when a listener calls the store in the middle of one of its messages', async () => {
    store = createStateStore();
    const worker = client('w');
    const map = worker.map('m');
    await map.set('warm', 0); // the probe: the sets below are posted
    const seen: string[] = [];
    store.watch('m', (change) => {
      seen.push(`${change.key}=${String(change.value)}`);
      // A call from this thread while the first message is half done: it must not pull the second one in.
      if (change.key === 'a' && change.value === 1) void store.local.map('m').get('a');
    });
    await Promise.all([map.set('a', 1), map.set('b', 1)]); // one message
    await map.set('a', 2); // the next message, posted before the store read the first
    await waitFor(() => seen.length === 3, { message: 'three changes' });
    expect(seen).toEqual(['a=1', 'b=1', 'a=2']);
  });

  it('announces counter adds made through shared memory by sampling', async () => {
    store = createStateStore({ counterSampleMs: 10 });
    const worker = client('w');
    await worker.counter('hits').add();
    const seen: number[] = [];
    store.watch('hits', (change) => seen.push(change.value as number));
    await worker.counter('hits').add(2);
    await waitFor(() => seen.includes(3), { message: 'the sampled total' });
    expect(seen).toEqual([3]);
  });
});

describe('the wire', () => {
  it('pipelines: a thousand calls issued together leave in one message', async () => {
    store = createStateStore();
    const port = store.connect('w');
    let posts = 0;
    const post = port.postMessage.bind(port);
    port.postMessage = (message: unknown, transfer?: never) => {
      posts++;
      post(message, transfer);
    };
    const map = client('w', port).map<number>('m');
    const results = await Promise.all(Array.from({ length: 1_000 }, (_, i) => map.set(`k${i}`, i)));
    expect(results).toHaveLength(1_000);
    expect(posts).toBe(1);
    expect(await store.local.map('m').size()).toBe(1_000);
  });

  it('answers malformed frames with ERR_STATE_PROTOCOL and keeps serving; never runs what it decodes', async () => {
    store = createStateStore();
    const port = store.connect('raw');
    ports.push(port);
    const replies: unknown[] = [];
    port.on('message', (message: OwnerMessage) => Array.isArray(message) && replies.push(...message));
    port.postMessage('not frames');
    port.postMessage([
      ['c', 1, 'map', 'm', 'constructor', []],
      ['c', 2, 'map', 'm', '__proto__', []],
      ['c', 3, '__proto__', 'm', 'get', []],
      ['c', 4, 'map', 'm', 'get', 'not args'],
      ['z', 5],
      ['c', 'no id'],
      ['c', 6, 'map', 'm', 'set', ['k', 1]],
      ['c', 7, 'map', 'm', 'get', ['k']],
    ]);
    await waitFor(() => replies.length === 7, { message: 'seven replies' });
    const byId = Object.fromEntries(replies.map((frame) => [(frame as unknown[])[1], frame]));
    expect(byId[1]).toMatchObject(['e', 1, { code: 'ERR_STATE_PROTOCOL', message: 'map "m" has no operation "constructor".' }]);
    expect(byId[2]).toMatchObject(['e', 2, { code: 'ERR_STATE_PROTOCOL' }]);
    expect(byId[3]).toMatchObject(['e', 3, { code: 'ERR_STATE_PROTOCOL', message: expect.stringMatching(/unknown kind "__proto__"/) }]);
    expect(byId[4]).toMatchObject(['e', 4, { code: 'ERR_STATE_PROTOCOL', message: expect.stringMatching(/args is not an array/) }]);
    expect(byId[5]).toMatchObject(['e', 5, { code: 'ERR_STATE_PROTOCOL', message: expect.stringMatching(/unknown frame tag "z"/) }]);
    expect(byId[6]).toEqual(['r', 6, undefined]);
    expect(byId[7]).toEqual(['r', 7, 1]);
  });

  it('a client refuses a store that speaks another protocol version, saying to rebuild', async () => {
    const { port1, port2 } = new MessageChannel();
    ports.push(port1);
    const stale = createStateClient(port2);
    clients.push(stale);
    port1.postMessage({ t: 'welcome', version: 999, holderId: 'w', counters: new SharedArrayBuffer(8) });
    await expect(stale.map('m').get('k')).rejects.toMatchObject({
      code: 'ERR_STATE_CLOSED',
      message: expect.stringMatching(/protocol 999 .* rebuild with npm run build/),
    });
  });

  it('fails pending calls when the store closes, and refuses calls after', async () => {
    store = createStateStore();
    const worker = client('w');
    const waiting = worker.event('e').wait();
    await waitFor(() => store.describe().length === 1, { message: 'event made' });
    store.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_STATE_CLOSED' });
    await expect(worker.map('m').get('k')).rejects.toMatchObject({ code: 'ERR_STATE_CLOSED' });
    await expect(store.local.map('m').get('k')).rejects.toMatchObject({ code: 'ERR_STATE_CLOSED' });
    expect(() => store.connect('late')).toThrow('The state store is closed; it cannot connect new workers.');
  });

  it('a second connect under the same id releases what the first held', async () => {
    store = createStateStore();
    const first = client('w');
    await first.lock('l').acquire();
    client('w');
    expect((await store.local.lock('l').info()).held).toBe(false);
    await expect(first.map('m').get('k')).rejects.toMatchObject({ code: 'ERR_STATE_CLOSED' });
  });
});
