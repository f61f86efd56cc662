import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { createStateClient, type StateClient } from '../../../src/state/client.js';
import { createChangelogFold, createNameMatcher, type ChangelogRecord } from '../../../src/state/changelog-records.js';
import type { ChangelogSink } from '../../../src/state/persister.js';
import { createStateStore, type StateStore, type StateStoreOptions } from '../../../src/state/store.js';
import { waitFor } from '../../helpers.js';

/**
 * The store's side of persistence, against a sink whose acknowledgements the test controls: a
 * reply about a persisted object must not reach the worker before its records are acknowledged.
 * (The real changelog on the real broker is tested in test/integration/state-persistence.test.ts.)
 */
interface Write {
  records: ChangelogRecord[];
  ack(): void;
  fail(error: Error): void;
}

function controlledSink(): ChangelogSink & { writes: Write[]; log: ChangelogRecord[] } {
  const writes: Write[] = [];
  const log: ChangelogRecord[] = [];
  return {
    writes,
    log,
    write: (records) =>
      new Promise<void>((resolve, reject) => {
        writes.push({ records, ack: () => (log.push(...records), resolve()), fail: reject });
      }),
  };
}

let store: StateStore | undefined;
const clients: StateClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  store?.close();
  store = undefined;
});

function open(names: string[], sink: ChangelogSink, extra: Partial<StateStoreOptions['persist']> = {}): StateStore {
  store = createStateStore({ persist: { names, sink, ...extra } });
  return store;
}

function worker(s: StateStore, id = 'w'): StateClient {
  const client = createStateClient(s.connect(id));
  clients.push(client);
  return client;
}

/** Settled-or-not of a promise, observable without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (value) => ((state.settled = true), (state.value = value)),
    (error) => ((state.settled = true), (state.error = error)),
  );
  return state;
}

function restoredFrom(log: ChangelogRecord[], names: string[]) {
  const fold = createChangelogFold(createNameMatcher(names));
  log.forEach((r, i) => fold.add(r.key, r.value, `log@${i}`));
  return fold.snapshot();
}

describe('write-through replies', () => {
  it('answers a worker’s setIfAbsent on a persisted map only after the changelog acknowledged it', async () => {
    const sink = controlledSink();
    const w = worker(open(['conversation'], sink));
    const set = track(w.map('conversation').setIfAbsent('1', { text: 'hi' }));
    await waitFor(() => sink.writes.length === 1, { message: 'the changelog write' });
    // A call on a plain object makes a full round trip on the same port: had the persisted reply
    // not been held, it would have come back in the same message as this one.
    await w.map('plain').get('x');
    expect(set.settled).toBe(false);
    expect(sink.writes[0]!.records).toEqual([
      { key: '["o","conversation"]', value: '{"kind":"map"}' },
      { key: '["e","conversation","1"]', value: '{"kind":"map","value":{"text":"hi"}}' },
    ]);
    sink.writes[0]!.ack();
    await waitFor(() => set.settled, { message: 'the reply after the ack' });
    expect(set.value).toBe(true);
    // Nothing about the plain map went to the changelog.
    expect(sink.writes).toHaveLength(1);
  });

  it('never posts a set to a persisted map: every set, not only the first, waits for the changelog', async () => {
    const sink = controlledSink();
    const w = worker(open(['conversation'], sink));
    const map = w.map('conversation');
    for (let i = 1; i <= 3; i++) {
      const set = track(map.set('k', i));
      await waitFor(() => sink.writes.length === i, { message: `changelog write ${i}` });
      await w.map('plain').get('x');
      expect(set.settled, `set ${i} before its acknowledgement`).toBe(false);
      sink.writes[i - 1]!.ack();
      await waitFor(() => set.settled, { message: `set ${i} after its acknowledgement` });
    }
    // The plain map's sets are posted (settled with no round trip), and go nowhere near the changelog.
    await w.map('plain').set('a', 1);
    await w.map('plain').set('b', 2);
    expect(await w.map('plain').size()).toBe(2);
    expect(sink.writes).toHaveLength(3);
  });

  it('refuses a call on a persisted object too large for one changelog record, before it changes anything', async () => {
    const sink = controlledSink();
    const w = worker(open(['m'], sink));
    const big = 'x'.repeat(1_100_000);
    await expect(w.map('m').set('k', big)).rejects.toMatchObject({
      code: 'ERR_STATE_TOO_LARGE',
      message: expect.stringContaining(
        'map "m": set carries 1100008 bytes of JSON; a persisted object\'s call must fit in one changelog record',
      ),
    });
    expect(sink.writes, 'nothing written').toHaveLength(0);
    // The object is as it was, and takes a call that fits.
    const small = track(w.map('m').set('k', 'small'));
    await waitFor(() => sink.writes.length === 1, { message: 'the small write' });
    sink.writes[0]!.ack();
    await waitFor(() => small.settled, { message: 'the small reply' });
    await expect(w.map('plain').set('big', big), 'objects that are not persisted take any size').resolves.toBeUndefined();
  });

  it('holds reads of persisted objects too, until what they saw is acknowledged', async () => {
    const sink = controlledSink();
    const s = open(['m'], sink);
    const writer = worker(s, 'writer');
    const reader = worker(s, 'reader');
    void writer.map('m').set('k', 'v');
    await waitFor(() => sink.writes.length === 1, { message: 'the write' });
    const read = track(reader.map('m').get('k'));
    await reader.map('plain').get('x');
    expect(read.settled).toBe(false);
    sink.writes[0]!.ack();
    await waitFor(() => read.settled, { message: 'the read' });
    expect(read.value).toBe('v');
  });

  it('batches pipelined calls into few writes, one in flight at a time, keeping only the latest value of a key', async () => {
    const sink = controlledSink();
    const w = worker(open(['m'], sink));
    const map = w.map<number>('m');
    const first = Array.from({ length: 1_000 }, (_, i) => map.set(`k${i}`, i));
    await waitFor(() => sink.writes.length === 1, { message: 'the first write' });
    // While that write is in flight, more calls gather for the next one.
    const second = Array.from({ length: 100 }, (_, i) => map.set('hot', i));
    await w.map('plain').get('x');
    expect(sink.writes).toHaveLength(1);
    expect(sink.writes[0]!.records).toHaveLength(1_001);
    sink.writes[0]!.ack();
    await Promise.all(first);
    await waitFor(() => sink.writes.length === 2, { message: 'the second write' });
    expect(sink.writes[1]!.records).toEqual([{ key: '["e","m","hot"]', value: '{"kind":"map","value":99}' }]);
    sink.writes[1]!.ack();
    await Promise.all(second);
  });

  it('sends adds of a persisted counter through the store, and keeps shared memory for the others', async () => {
    const sink = controlledSink();
    const w = worker(open(['tony.*'], sink));
    const add = track(w.counter('tony.asked').add(5));
    await waitFor(() => sink.writes.length === 1, { message: 'the counter write' });
    expect(add.settled).toBe(false);
    expect(sink.writes[0]!.records).toEqual([{ key: '["o","tony.asked"]', value: '{"kind":"counter","value":5}' }]);
    sink.writes[0]!.ack();
    await waitFor(() => add.settled, { message: 'the add' });
    expect(add.value).toBe(5);
    expect(await w.counter('hits').add(3)).toBe(3);
    expect(await w.counter('tony.asked').get()).toBe(5);
    expect(sink.writes).toHaveLength(1);
    expect(store!.get('hits')).toEqual({ kind: 'counter', value: 3 });
  });

  it('holds the main thread’s own calls the same way', async () => {
    const sink = controlledSink();
    const s = open(['v'], sink);
    const set = track(s.local.value('v').set({ a: 1 }));
    await waitFor(() => sink.writes.length === 1, { message: 'the write' });
    await s.local.value('other').set(1);
    expect(set.settled).toBe(false);
    sink.writes[0]!.ack();
    await waitFor(() => set.settled, { message: 'the set' });
    const flushed = track(s.flush());
    await waitFor(() => flushed.settled, { message: 'flush with nothing outstanding' });
  });

  it('fails held replies and refuses persisted writes after a failed write, leaving other objects alone', async () => {
    const sink = controlledSink();
    const w = worker(open(['m'], sink));
    const set = w.map('m').set('a', 1);
    await waitFor(() => sink.writes.length === 1, { message: 'the write' });
    sink.writes[0]!.fail(new Error('TOPIC_AUTHORIZATION_FAILED'));
    await expect(set).rejects.toMatchObject({
      code: 'ERR_STATE_PERSIST',
      message: expect.stringMatching(
        /could not be written to its changelog \(Error: TOPIC_AUTHORIZATION_FAILED\)\. .*restart the supervisor/,
      ),
    });
    await expect(w.map('m').set('b', 2)).rejects.toMatchObject({ code: 'ERR_STATE_PERSIST' });
    expect(() => store!.set('m', {}, 'map')).toThrow(/could not be written to its changelog/);
    await expect(store!.flush()).rejects.toMatchObject({ code: 'ERR_STATE_PERSIST' });
    expect(await w.map('plain').set('c', 3)).toBeUndefined();
    expect(sink.writes).toHaveLength(1);
  });
});

describe('what the changelog holds', () => {
  /** Acknowledges writes as they come until `work` is done and nothing is outstanding. */
  async function drive<T>(s: StateStore, sink: ReturnType<typeof controlledSink>, work: Promise<T>): Promise<T> {
    const done = track(work.then(async (value) => (await s.flush(), value)));
    await waitFor(
      () => {
        for (const write of sink.writes.splice(0)) write.ack();
        return done.settled;
      },
      { intervalMs: 1, message: 'the work and its writes' },
    );
    if (done.error) throw done.error;
    return done.value as T;
  }

  it('restores deletes, clears, kind changes and every kind through tombstones, also after a restore', async () => {
    const names = ['m', 'l', 'c', 'v', 'ns', 'q', 'e', 'shape'];
    const sink = controlledSink();
    const first = open(names, sink);
    const w = worker(first);
    await drive(
      first,
      sink,
      Promise.all([
        w.map('m').batch([
          { op: 'set', key: 'a', value: 1 },
          { op: 'set', key: 'b', value: 2 },
          { op: 'delete', key: 'a' },
        ]),
        w.list('l').append('x', 'y', 'z'),
        w
          .counter('c')
          .add(41)
          .then(() => w.counter('c').add(1)),
        w.value('v').set({ nested: [true, null] }),
        w.namespace('ns').assign({ a: 1, b: 2 }),
        w.queue('q', { capacity: 5 }).put('job'),
        w.event('e').set(),
        w.map('shape').set('k', 1),
        w.map('unpersisted').set('k', 1),
      ]),
    );
    first.delete('shape');
    await drive(
      first,
      sink,
      (async () => {
        await w.list('shape').append('now a list');
        await w.list('l').clear();
        await w.list('l').append('again');
      })(),
    );
    const expected = Object.fromEntries(Object.entries(first.snapshot()).filter(([name]) => name !== 'unpersisted'));
    expect(expected.shape).toEqual({ kind: 'list', value: ['now a list'] });
    expect(restoredFrom(sink.log, names)).toEqual(expected);
    w.close();
    first.close();

    // A store restored from that log knows what the log holds: clearing it tombstones the restored keys.
    const second = open(names, sink, { restored: restoredFrom(sink.log, names) });
    expect(second.snapshot()).toEqual(expected);
    const before = sink.log.length;
    await drive(second, sink, Promise.resolve());
    expect(sink.log.length, 'a restore writes nothing back').toBe(before);
    const w2 = worker(second, 'w2');
    await drive(second, sink, Promise.all([w2.map('m').clear(), w2.map('m').set('only', 1), w2.namespace('ns').delete('a')]));
    expect(restoredFrom(sink.log, names)).toEqual({
      ...expected,
      m: { kind: 'map', value: { only: 1 } },
      ns: { kind: 'namespace', value: { b: 2 } },
    });
  });
});

describe('locks and semaphores in the changelog (a deployment’s next owner: docs/cluster.md)', () => {
  it('keep their holders, tokens and what is left of their leases; an operator’s snapshot restores them free', async () => {
    const sink = controlledSink();
    const first = open(['*'], sink);
    // Every write is acknowledged as it comes.
    const pump = setInterval(() => sink.writes.splice(0).forEach((w) => w.ack()), 1);
    onTestFinished(() => clearInterval(pump));
    const settle = () => first.flush();
    const lock = track(Promise.resolve(first.execute('host-a/w1', 'lock', 'job', 'acquire', [60_000])));
    const short = track(Promise.resolve(first.execute('host-a/w1', 'lock', 'brief', 'acquire', [1])));
    const permit = track(Promise.resolve(first.execute('host-b/w2', 'semaphore', 'slots', 'acquire', [undefined], { permits: 2 })));
    await settle();
    await waitFor(() => lock.settled && short.settled && permit.settled);
    const { token } = lock.value as { token: number; expiresAt: number };
    // The extended lease is what the next owner gets.
    const extended = track(Promise.resolve(first.execute('host-a/w1', 'lock', 'job', 'extend', [token, 120_000])));
    await settle();
    await waitFor(() => extended.settled);
    await new Promise((resolve) => setTimeout(resolve, 5)); // the 1 ms lease ends before the restore
    first.close();

    // This owner's writes are acknowledged at once.
    const second = open(['*'], { write: async () => undefined }, { restored: restoredFrom(sink.log, ['*']) });
    const info = (await second.execute('other', 'lock', 'job', 'info', [])) as { held: boolean; holder: string; expiresAt: number };
    expect(info).toMatchObject({ held: true, holder: 'host-a/w1', expiresAt: extended.value });
    expect(await second.execute('other', 'lock', 'brief', 'info', [])).toMatchObject({ held: false });
    expect(await second.execute('other', 'semaphore', 'slots', 'available', [])).toBe(1);
    // The holder releases with the token it was given; a new grant never reuses a token.
    const again = track(Promise.resolve(second.execute('other', 'lock', 'brief', 'acquire', [1_000])));
    await waitFor(() => again.settled);
    expect((again.value as { token: number }).token).toBeGreaterThan(token);
    expect(await second.execute('host-a/w1', 'lock', 'job', 'release', [token])).toBe(true);
    // Released when the holder's supervisor is gone.
    second.releaseHolder('host-b/w2');
    expect(await second.execute('other', 'semaphore', 'slots', 'available', [])).toBe(2);
    second.close();

    const third = createStateStore({});
    third.restore(restoredFrom(sink.log, ['*']));
    expect(third.get('job')?.value).toMatchObject({ holders: [] });
    third.close();
  });
});

describe('executeOnce (a deployment’s retried calls: docs/cluster.md)', () => {
  it('applies a call once per id, writing the id with the change, and answers a retry with the first answer', async () => {
    const sink = controlledSink();
    const s = open(['*'], sink);
    const first = track(s.executeOnce('op-1', 'w', 'counter', 'c', 'add', [5]) as Promise<unknown>);
    await waitFor(() => sink.writes.length === 1);
    // The change and the operation's id go in one write, so both land or neither does.
    expect(sink.writes[0]!.records.map((r) => r.key)).toEqual([JSON.stringify(['o', 'c']), JSON.stringify(['x', 'op-1'])]);
    const retryMeanwhile = s.executeOnce('op-1', 'w', 'counter', 'c', 'add', [5]) as Promise<unknown>;
    sink.writes[0]!.ack();
    await expect(retryMeanwhile).resolves.toBe(5);
    await waitFor(() => first.settled);
    expect(first.value).toBe(5);
    await expect(s.executeOnce('op-1', 'w', 'counter', 'c', 'add', [5])).toBe(5);
    expect(s.get('c')).toEqual({ kind: 'counter', value: 5 });
    expect(sink.writes).toHaveLength(1);
  });

  it('deduplicates after a restore from the changelog, and lets a call whose write failed be tried again', async () => {
    const sink = controlledSink();
    const s = open(['*'], sink);
    const applied = s.executeOnce('op-a', 'w', 'counter', 'c', 'add', [2]) as Promise<unknown>;
    await waitFor(() => sink.writes.length === 1);
    sink.writes[0]!.ack();
    await applied;
    s.close();
    store = undefined;

    const fold = createChangelogFold(createNameMatcher(['*']));
    sink.log.forEach((record, i) => fold.add(record.key, record.value, `log@${i}`));
    const next = controlledSink();
    const restored = open(['*'], next, { restored: fold.snapshot(), restoredOps: fold.ops });
    expect(restored.executeOnce('op-a', 'w', 'counter', 'c', 'add', [2])).toBe(2);
    expect(restored.get('c')).toEqual({ kind: 'counter', value: 2 });

    const failing = restored.executeOnce('op-b', 'w', 'counter', 'c', 'add', [1]) as Promise<unknown>;
    await waitFor(() => next.writes.length === 1);
    next.writes[0]!.fail(new Error('broker gone'));
    await expect(failing).rejects.toMatchObject({ code: 'ERR_STATE_PERSIST' });
    // Not remembered as applied: tried again, it is run again (and refused by this failed store,
    // which a deployment replaces: the retry goes to the next owner's store).
    await expect(restored.executeOnce('op-b', 'w', 'counter', 'c', 'add', [1])).rejects.toMatchObject({ code: 'ERR_STATE_PERSIST' });
  });

  it('remembers nothing for a call that changed nothing', async () => {
    const sink = controlledSink();
    const s = open(['*'], sink);
    const set = s.executeOnce('op-set', 'w', 'value', 'v', 'set', [1]) as Promise<unknown>;
    await waitFor(() => sink.writes.length === 1);
    sink.writes[0]!.ack();
    await set;
    await expect(s.executeOnce('op-get', 'w', 'value', 'v', 'get', [])).resolves.toBe(1);
    expect(sink.writes.flatMap((w) => w.records.map((r) => r.key)).filter((key) => key.includes('op-get'))).toEqual([]);
  });
});
