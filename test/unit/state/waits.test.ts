import { afterEach, describe, expect, it } from 'vitest';
import { TimeoutError } from '../../../src/errors.js';
import { createStateClient, type StateClient } from '../../../src/state/client.js';
import { createStateStore, type StateStore } from '../../../src/state/store.js';
import { waitFor } from '../../helpers.js';

/**
 * Locks, semaphores, events and queues: the kinds a caller waits on. Clients here run in the test's
 * own thread over real MessagePorts (threads.test.ts does the same from worker threads).
 */
let store: StateStore;
const clients: StateClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  store?.close();
});

function client(holderId: string): StateClient {
  const made = createStateClient(store.connect(holderId));
  clients.push(made);
  return made;
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('locks', () => {
  it('serves waiters first come, first served', async () => {
    store = createStateStore();
    const [a, b, c] = [client('a'), client('b'), client('c')];
    const first = await a.lock('l').acquire();
    const order: string[] = [];
    const waits = [b, c, a].map((who, i) =>
      who
        .lock('l')
        .acquire({ timeoutMs: 5_000 })
        .then(async (handle) => {
          order.push(['b', 'c', 'a'][i]!);
          await handle.release();
        }),
    );
    await waitFor(async () => (await store.local.lock('l').info()).waiting === 3, { message: 'three waiters' });
    expect(await first.release()).toBe(true);
    await Promise.all(waits);
    expect(order).toEqual(['b', 'c', 'a']);
  });

  it('times out with TimeoutError (ERR_TIMEOUT), and timeoutMs 0 only tries', async () => {
    store = createStateStore();
    const holder = client('holder');
    await holder.lock('l').acquire({ leaseMs: 60_000 });
    const other = client('other');
    const error = await rejection(other.lock('l').acquire({ timeoutMs: 0 }));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.code).toBe('ERR_TIMEOUT');
    expect(error.message).toMatch(
      /^lock "l" not acquired within 0 ms: it is held by "holder" \(lease ends in \d+\.\d s\)\. Raise timeoutMs, or hold it for less time\.$/,
    );
    const started = Date.now();
    expect((await rejection(other.lock('l').acquire({ timeoutMs: 80 }))).code).toBe('ERR_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    // The timed-out waiter left the line.
    expect((await store.local.lock('l').info()).waiting).toBe(0);
  });

  it('takes a lock back when its lease expires: a late release says so, and the next waiter gets it', async () => {
    store = createStateStore();
    const late = await client('late').lock('l').acquire({ leaseMs: 50 });
    expect(late.expiresAt).toBeGreaterThan(Date.now() - 1);
    const next = await client('next').lock('l').acquire({ timeoutMs: 5_000 });
    expect(await late.release()).toBe(false);
    expect(await late.extend()).toBe(false);
    expect(await next.extend(60_000)).toBe(true);
    expect(next.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    expect(await next.release()).toBe(true);
  });

  it('releaseHolder frees a dead worker’s locks and permits and cancels its waits', async () => {
    store = createStateStore();
    const dead = client('dead');
    await dead.lock('l').acquire();
    await dead.semaphore('s', 2).acquire();
    await dead.semaphore('s', 2).acquire();
    const waiting = dead.queue('q').get();
    await waitFor(() => store.describe().some((o) => o.name === 'q'), { message: 'queue made' });
    store.releaseHolder('dead');
    expect((await rejection(waiting)).code).toBe('ERR_STATE_CLOSED');
    expect(await store.local.lock('l').info()).toEqual({ held: false, waiting: 0 });
    expect(await store.local.semaphore('s', 2).available()).toBe(2);
    // Nothing put afterwards goes to the dead waiter.
    await store.local.queue('q').put('item');
    expect(await store.local.queue('q').size()).toBe(1);
    expect(store.holders()).toEqual([]);
  });

  it('withLock releases even when the work throws', async () => {
    store = createStateStore();
    const lock = store.local.lock('l');
    await expect(
      lock.withLock(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await lock.info()).held).toBe(false);
    expect(await lock.withLock(async () => 'done')).toBe('done');
  });
});

describe('semaphores', () => {
  it('hands out its permits and no more, and keeps its count', async () => {
    store = createStateStore();
    const sem = store.local.semaphore('s', 2);
    const one = await sem.acquire();
    await sem.acquire();
    expect(await sem.available()).toBe(0);
    expect((await rejection(sem.acquire({ timeoutMs: 0 }))).message).toBe(
      'semaphore "s" not acquired within 0 ms: all 2 permits are held. Raise timeoutMs, or hold it for less time.',
    );
    const third = sem.acquire({ timeoutMs: 5_000 });
    await one.release();
    await third;
    const error = await rejection(store.local.semaphore('s', 3).available());
    expect(error.code).toBe('ERR_STATE_CONFIG');
    expect(error.message).toBe('semaphore "s" exists with 2 permits; asked for 3. Use the same count everywhere, or another name.');
    expect((await rejection(store.local.semaphore('t', 0).available())).message).toBe(
      'semaphore "t" permits must be an integer >= 1; got 0.',
    );
  });
});

describe('events', () => {
  it('releases every waiter on set, returns at once while set, and times out after clear', async () => {
    store = createStateStore();
    const event = store.local.event('e');
    const waits = [client('a').event('e').wait(), client('b').event('e').wait({ timeoutMs: 5_000 })];
    await waitFor(() => store.describe().some((o) => o.name === 'e'), { message: 'event made' });
    await event.set();
    await Promise.all(waits);
    await event.wait({ timeoutMs: 0 });
    await event.clear();
    expect(await event.isSet()).toBe(false);
    const error = await rejection(event.wait({ timeoutMs: 30 }));
    expect(error.code).toBe('ERR_TIMEOUT');
    expect(error.message).toBe('event "e" was not set within 30 ms.');
  });
});

describe('queues', () => {
  it('is FIFO and bounded: a put waits while full and goes in when a get makes room', async () => {
    store = createStateStore();
    const queue = store.local.queue<number>('q', { capacity: 2 });
    await queue.put(1);
    await queue.put(2);
    const full = await rejection(queue.put(3, { timeoutMs: 20 }));
    expect(full.code).toBe('ERR_TIMEOUT');
    expect(full.message).toBe('queue "q" stayed full (2 items) for 20 ms; nothing was put. Consume faster, or raise its capacity.');
    const waitingPut = queue.put(4, { timeoutMs: 5_000 });
    expect(await queue.get()).toBe(1);
    await waitingPut;
    expect([await queue.get(), await queue.get()]).toEqual([2, 4]);
    const empty = await rejection(queue.get({ timeoutMs: 0 }));
    expect(empty.message).toBe('queue "q" stayed empty for 0 ms.');
  });

  it('hands a put straight to a waiting get, and refuses another capacity', async () => {
    store = createStateStore();
    const waiting = client('consumer').queue<string>('q').get({ timeoutMs: 5_000 });
    await waitFor(() => store.describe().some((o) => o.name === 'q'), { message: 'queue made' });
    await store.local.queue('q').put('hello');
    expect(await waiting).toBe('hello');
    const error = await rejection(store.local.queue('q', { capacity: 5 }).size());
    expect(error.code).toBe('ERR_STATE_CONFIG');
    expect(error.message).toBe('queue "q" exists with capacity 1000; asked for 5. Use the same capacity everywhere, or another name.');
  });
});
