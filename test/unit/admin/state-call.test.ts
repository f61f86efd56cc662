import { describe, expect, it, onTestFinished } from 'vitest';
import { connectAdmin, type AdminClient } from '../../../src/admin/client.js';
import { STATE_CALL_OPS } from '../../../src/admin/protocol.js';
import { startAdminServer } from '../../../src/admin/server.js';
import { adminStateApi } from '../../../src/admin/state.js';
import type { ChangelogSink } from '../../../src/state/persister.js';
import { createStateStore, type StateStore, type StateStoreOptions } from '../../../src/state/store.js';
import { STATE_KINDS } from '../../../src/state/types.js';
import { clientForTest, memoryApi, rawConnection, serverForTest, silentLogger, tempDir, TEST_KEY, waitFor } from './fixtures.js';
import type { AdminLimits, StateChange } from '../../../src/admin/protocol.js';

/**
 * `state.call` against a real store: what the Python client's proxies send. One operation of an
 * object kind's public table per request, in the name of the connection, whose locks and waits
 * end with it.
 */
function storeForTest(options: StateStoreOptions = {}): StateStore {
  const store = createStateStore(options);
  onTestFinished(() => store.close());
  return store;
}

async function serve(options: { store?: StateStore; limits?: Partial<AdminLimits> } = {}) {
  const store = options.store ?? storeForTest();
  const server = await serverForTest({ ...memoryApi().api, state: adminStateApi(store) }, { limits: options.limits });
  const connect = () => clientForTest({ dir: server.dir });
  return { store, server, connect };
}

const call = (client: AdminClient, kind: string, name: string, op: string, args?: unknown[], init?: unknown) =>
  client.call('state.call', { kind, name, op, ...(args && { args }), ...(init !== undefined && { init }) });

describe('state.call', () => {
  it('is listed in the welcome only when the API serves it', async () => {
    const { connect } = await serve();
    expect((await connect()).server.methods).toContain('state.call');
    const bare = await serverForTest(memoryApi().api);
    const client = await clientForTest({ dir: bare.dir });
    expect(client.server.methods).not.toContain('state.call');
    await expect(call(client, 'counter', 'c', 'add', [1])).rejects.toMatchObject({ code: 'ERR_UNKNOWN_METHOD' });
  });

  it('runs every public operation of every kind, on the same objects workers and the supervisor see', async () => {
    const { store, connect } = await serve();
    const c = await connect();
    // counter
    expect(await call(c, 'counter', 'hits', 'add', [5])).toBe(5);
    expect(await call(c, 'counter', 'hits', 'add')).toBe(6);
    await store.local.counter('hits').add(4);
    expect(await call(c, 'counter', 'hits', 'get')).toBe(10);
    expect(await call(c, 'counter', 'hits', 'set', [42])).toBeNull();
    expect(await store.local.counter('hits').get()).toBe(42);
    // map
    expect(await call(c, 'map', 'm', 'set', ['a', { n: 1 }])).toBeNull();
    expect(await call(c, 'map', 'm', 'setIfAbsent', ['a', 2])).toBe(false);
    expect(await call(c, 'map', 'm', 'setIfAbsent', ['b', 2])).toBe(true);
    expect(await call(c, 'map', 'm', 'compareAndSet', ['b', 2, 3])).toBe(true);
    expect(await call(c, 'map', 'm', 'compareAndSet', ['b', 2, 4, true])).toEqual([false, 3]);
    expect(await call(c, 'map', 'm', 'get', ['a'])).toEqual({ n: 1 });
    expect(await call(c, 'map', 'm', 'get', ['nope'])).toBeNull();
    expect(await call(c, 'map', 'm', 'has', ['b'])).toBe(true);
    expect(await call(c, 'map', 'm', 'keys')).toEqual(['a', 'b']);
    expect(await call(c, 'map', 'm', 'entries')).toEqual([
      ['a', { n: 1 }],
      ['b', 3],
    ]);
    expect(await call(c, 'map', 'm', 'size')).toBe(2);
    expect(
      await call(c, 'map', 'm', 'batch', [
        [
          { op: 'has', key: 'a' },
          { op: 'get', key: 'a' },
          { op: 'delete', key: 'a' },
        ],
      ]),
    ).toEqual([true, { n: 1 }, true]);
    expect(await call(c, 'map', 'm', 'delete', ['b'])).toBe(true);
    expect(await call(c, 'map', 'm', 'clear')).toBeNull();
    expect(await store.local.map('m').size()).toBe(0);
    // list
    expect(await call(c, 'list', 'l', 'append', [1, 2, 3])).toBe(3);
    expect(await call(c, 'list', 'l', 'get', [-1])).toBe(3);
    expect(await call(c, 'list', 'l', 'slice', [1])).toEqual([2, 3]);
    expect(await call(c, 'list', 'l', 'length')).toBe(3);
    expect(await call(c, 'list', 'l', 'clear')).toBeNull();
    // value
    expect(await call(c, 'value', 'v', 'set', ['x'])).toBeNull();
    expect(await call(c, 'value', 'v', 'compareAndSet', ['x', 'y'])).toBe(true);
    expect(await call(c, 'value', 'v', 'get')).toBe('y');
    // namespace
    expect(await call(c, 'namespace', 'ns', 'assign', [{ mood: 'calm', suit: 42 }])).toBeNull();
    expect(await call(c, 'namespace', 'ns', 'set', ['mood', 'busy'])).toBeNull();
    expect(await call(c, 'namespace', 'ns', 'delete', ['suit'])).toBe(true);
    expect(await call(c, 'namespace', 'ns', 'get', ['mood'])).toBe('busy');
    expect(await call(c, 'namespace', 'ns', 'toObject')).toEqual({ mood: 'busy' });
    // event
    expect(await call(c, 'event', 'e', 'isSet')).toBe(false);
    const waiting = call(c, 'event', 'e', 'wait', [10_000]);
    expect(await call(c, 'event', 'e', 'set')).toBeNull();
    expect(await waiting).toBeNull();
    expect(await call(c, 'event', 'e', 'clear')).toBeNull();
    await expect(call(c, 'event', 'e', 'wait', [0])).rejects.toMatchObject({ code: 'ERR_TIMEOUT', retriable: true });
    // queue
    expect(await call(c, 'queue', 'q', 'put', ['job', 0], { capacity: 1 })).toBeNull();
    await expect(call(c, 'queue', 'q', 'put', ['more', 0], { capacity: 1 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(await call(c, 'queue', 'q', 'size')).toBe(1);
    expect(await call(c, 'queue', 'q', 'get', [0])).toBe('job');
    // lock
    const grant = (await call(c, 'lock', 'deploy', 'acquire', [5_000, 0])) as { token: number; expiresAt: number };
    expect(grant).toMatchObject({ token: expect.any(Number), expiresAt: expect.any(Number) });
    expect(await call(c, 'lock', 'deploy', 'info')).toMatchObject({
      held: true,
      holder: expect.stringMatching(/^@admin\/\d+$/),
      waiting: 0,
    });
    expect(await call(c, 'lock', 'deploy', 'extend', [grant.token, 10_000])).toBeGreaterThan(grant.expiresAt);
    expect(await call(c, 'lock', 'deploy', 'release', [grant.token])).toBe(true);
    expect(await call(c, 'lock', 'deploy', 'release', [grant.token])).toBe(false);
    // semaphore
    const permit = (await call(c, 'semaphore', 'slots', 'acquire', [null, 0], { permits: 2 })) as { token: number; expiresAt: null };
    expect(permit.expiresAt).toBeNull();
    expect(await call(c, 'semaphore', 'slots', 'available', [], { permits: 2 })).toBe(1);
    expect(await call(c, 'semaphore', 'slots', 'release', [permit.token], { permits: 2 })).toBe(true);
    // Every kind was exercised, with every operation it allows.
    expect(
      store
        .describe()
        .map((d) => d.kind)
        .sort(),
    ).toEqual([...STATE_KINDS].sort());
  });

  it('refuses an operation outside the kind’s public table with ERR_BAD_PARAMS naming the ones it has, and keeps serving', async () => {
    const { store, connect } = await serve();
    const c = await connect();
    await call(c, 'counter', 'hits', 'add', [1]);
    for (const [kind, op] of [
      ['counter', 'slot'],
      ['queue', 'capacity'],
      ['lock', 'available'],
      ['map', 'constructor'],
      ['map', '__proto__'],
      ['map', 'toString'],
      ['value', 'update'],
      ['map', 'hasOwnProperty'],
      ['list', ''],
    ] as const) {
      await expect(call(c, kind, 'hits', op), `${kind}.${op}`).rejects.toMatchObject({
        code: 'ERR_BAD_PARAMS',
        message: `state.call: a ${kind} has the operations ${STATE_CALL_OPS[kind].join(', ')}; got ${JSON.stringify(op)}`,
      });
    }
    await expect(c.call('state.call', { kind: 'map', name: 'm', op: 42 })).rejects.toMatchObject({
      code: 'ERR_BAD_PARAMS',
      message: expect.stringMatching(/got number$/),
    });
    expect(
      store.describe().map((d) => d.name),
      'a refused call creates nothing',
    ).toEqual(['hits']);
    expect(await call(c, 'counter', 'hits', 'get')).toBe(1);
  });

  it('refuses a kind that is not one of the nine with ERR_BAD_PARAMS listing them', async () => {
    const { store, connect } = await serve();
    const c = await connect();
    for (const kind of ['object', 'Map', 'constructor', '__proto__', 'hasOwnProperty', 'toString', 7, null, ['map']]) {
      await expect(c.call('state.call', { kind, name: 'x', op: 'get' }), String(kind)).rejects.toMatchObject({
        code: 'ERR_BAD_PARAMS',
        message: expect.stringMatching(
          /^state\.call: "kind" must be one of map, list, value, counter, lock, semaphore, event, queue, namespace; got /,
        ),
      });
    }
    expect(store.describe()).toEqual([]);
    expect(await c.ping()).toMatchObject({ pong: true });
  });

  it('answers bad params and bad arguments with their codes, one request each', async () => {
    const { connect } = await serve();
    const c = await connect();
    const cases: [unknown, string, RegExp][] = [
      [{ kind: 'map', name: 'm', op: 'get', args: 'k' }, 'ERR_BAD_PARAMS', /"args" must be an array/],
      [{ kind: 'map', name: 'm', op: 'get', extra: 1 }, 'ERR_BAD_PARAMS', /takes params \{kind, name, op, args, init\}/],
      [{ kind: 'map', op: 'get' }, 'ERR_BAD_PARAMS', /"name" must be a string of 1 to 256 characters/],
      [{ kind: 'map', name: 'x'.repeat(257), op: 'get' }, 'ERR_BAD_PARAMS', /"name" must be a string/],
      [[1, 2], 'ERR_BAD_PARAMS', /takes params/],
      [{ kind: 'map', name: 'm', op: 'get', init: { permits: 2 } }, 'ERR_BAD_PARAMS', /"init" of a map must be absent/],
      [
        { kind: 'semaphore', name: 's', op: 'available', init: { permits: 0 } },
        'ERR_BAD_PARAMS',
        /"init" of a semaphore must be \{"permits": <a positive integer>\}/,
      ],
      [
        { kind: 'queue', name: 'q', op: 'size', init: { capacity: 2, permits: 1 } },
        'ERR_BAD_PARAMS',
        /"init" of a queue must be \{"capacity"/,
      ],
      [{ kind: 'semaphore', name: 's', op: 'available' }, 'ERR_STATE_ARGUMENT', /semaphore "s" permits must be an integer >= 1/],
      [{ kind: 'map', name: 'm', op: 'get', args: [7] }, 'ERR_STATE_ARGUMENT', /map "m" \.get key must be a string; got 7/],
      [{ kind: 'counter', name: 'c', op: 'add', args: [1.5] }, 'ERR_STATE_ARGUMENT', /must be a safe integer/],
      [{ kind: 'list', name: 'l', op: 'get', args: ['first'] }, 'ERR_STATE_ARGUMENT', /index must be a safe integer/],
      [{ kind: 'lock', name: 'k', op: 'acquire', args: [-1] }, 'ERR_STATE_ARGUMENT', /leaseMs must be a number of milliseconds >= 0/],
      [{ kind: 'map', name: 'm', op: 'batch', args: [[{ op: 'eval', key: 'a' }]] }, 'ERR_STATE_ARGUMENT', /entry 0 must be \{op, key, …\}/],
      [{ kind: 'namespace', name: 'n', op: 'assign', args: ['x'] }, 'ERR_STATE_VALUE', /can only be set to an object of entries/],
      [{ kind: 'map', name: 'm', op: 'set', args: ['k'] }, 'ERR_STATE_VALUE', /undefined/],
    ];
    for (const [params, code, message] of cases) {
      await expect(c.call('state.call', params), JSON.stringify(params).slice(0, 120)).rejects.toMatchObject({
        code,
        message: expect.stringMatching(message),
      });
    }
    await call(c, 'counter', 'taken', 'add');
    await expect(call(c, 'map', 'taken', 'get', ['k'])).rejects.toMatchObject({
      code: 'ERR_STATE_KIND',
      message: expect.stringMatching(/is a counter, not a map/),
    });
    await call(c, 'semaphore', 'two', 'available', [], { permits: 2 });
    await expect(call(c, 'semaphore', 'two', 'available', [], { permits: 3 })).rejects.toMatchObject({ code: 'ERR_STATE_CONFIG' });
    expect(await c.ping()).toMatchObject({ pong: true });
  });

  it('frees a lock, and ends the waits, of a connection that closes without releasing (a killed client)', async () => {
    const { store, server, connect } = await serve();
    const holder = await connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} });
    onTestFinished(() => holder.close());
    const other = await connect();
    await call(holder, 'lock', 'deploy', 'acquire', [600_000]);
    const info = (await call(other, 'lock', 'deploy', 'info')) as { held: boolean; holder: string };
    expect(info.held).toBe(true);
    // The holder also waits for a queue item; that wait must end with it, not eat the next item.
    const orphan = call(holder, 'queue', 'jobs', 'get', [600_000]).catch((error: unknown) => error);
    await waitFor(async () => (await store.local.lock('deploy').info()).held, { message: 'the lock held' });
    let granted: { token: number } | undefined;
    const waiter = (call(other, 'lock', 'deploy', 'acquire', [30_000, 20_000]) as Promise<{ token: number }>).then((g) => (granted = g));
    await waitFor(async () => (await store.local.lock('deploy').info()).waiting === 1, { message: 'the other client waiting' });
    expect(granted, 'not granted while held').toBeUndefined();

    void holder.close(); // the connection ends; the client released nothing
    await waiter;
    const after = (await call(other, 'lock', 'deploy', 'info')) as { held: boolean; holder: string };
    expect(after).toMatchObject({ held: true, waiting: 0 });
    expect(after.holder).not.toBe(info.holder);
    expect(await orphan).toMatchObject({ code: 'ERR_ADMIN_CLOSED' });
    await call(other, 'queue', 'jobs', 'put', ['next']);
    expect(await call(other, 'queue', 'jobs', 'get', [0]), 'the closed connection’s wait took nothing').toBe('next');
  });

  it('frees a permit when the socket is destroyed with no goodbye, as a SIGKILL would', async () => {
    const { store, server } = await serve();
    const victim = await rawConnection(server.address);
    await victim.authenticate();
    victim.send({
      v: 1,
      id: 1,
      method: 'state.call',
      params: { kind: 'semaphore', name: 'slots', op: 'acquire', args: [null, 0], init: { permits: 1 } },
    });
    expect(await victim.frame(3)).toMatchObject({ id: 1, ok: true, result: { token: expect.any(Number), expiresAt: null } });
    expect(await store.local.semaphore('slots', 1).available()).toBe(0);
    victim.socket.destroy();
    await waitFor(async () => (await store.local.semaphore('slots', 1).available()) === 1, {
      message: 'the permit back',
      timeoutMs: 5_000,
    });
  });

  it('answers ERR_BUSY past maxInFlightPerConnection waiting calls, and serves again once they finish', async () => {
    const { connect } = await serve({ limits: { maxInFlightPerConnection: 2 } });
    const c = await connect();
    const waits = [call(c, 'event', 'go', 'wait', [30_000]), call(c, 'event', 'go', 'wait', [30_000])];
    await expect(call(c, 'event', 'go', 'wait', [30_000])).rejects.toMatchObject({
      code: 'ERR_BUSY',
      retriable: true,
      message: '2 requests of this connection are still running: wait for their replies',
    });
    await expect(call(c, 'counter', 'n', 'get')).rejects.toMatchObject({ code: 'ERR_BUSY' });
    expect(await c.ping(), 'other methods are not held up').toMatchObject({ pong: true });
    const setter = await connect();
    await call(setter, 'event', 'go', 'set');
    expect(await Promise.all(waits)).toEqual([null, null]);
    expect(await call(c, 'counter', 'n', 'add', [1])).toBe(1);
  });

  it('answers a call on a persisted object only once the changelog has acknowledged it', async () => {
    const acks: (() => void)[] = [];
    const sink: ChangelogSink = { write: () => new Promise<void>((resolve) => acks.push(resolve)) };
    const { connect } = await serve({ store: storeForTest({ persist: { names: ['kept'], sink } }) });
    const c = await connect();
    let answered = false;
    const reply = call(c, 'map', 'kept', 'set', ['k', 1]).then(() => (answered = true));
    await waitFor(() => acks.length === 1, { message: 'the changelog write' });
    expect(await call(c, 'map', 'loose', 'size'), 'a call on another object is not held').toBe(0);
    expect(answered).toBe(false);
    acks[0]!();
    await reply;
    expect(answered).toBe(true);
  });

  it('survives random calls: every one gets its own answer, none an internal error, and the supervisor keeps serving', async () => {
    const seed = Number(process.env.WHARF_FUZZ_SEED ?? Date.now() % 1_000_000);
    let a = seed >>> 0;
    const random = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const values: unknown[] = [
      undefined,
      null,
      0,
      -1,
      1.5,
      2 ** 53,
      1e300,
      '',
      'k',
      '__proto__',
      'constructor',
      true,
      [],
      [1, [2]],
      {},
      { op: 'get', key: 'k' },
      { constructor: 1 },
      'x'.repeat(300),
    ];
    const { connect } = await serve({ limits: { maxInFlightPerConnection: 1_000 } });
    const c = await connect();
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) {
      const kind = random() < 0.9 ? pick(STATE_KINDS) : pick(['nope', 'Object', 1]);
      const ops = STATE_CALL_OPS[kind as keyof typeof STATE_CALL_OPS] ?? ['get'];
      const params: Record<string, unknown> = {
        kind,
        name: pick(['a', 'b', 'c']),
        op: random() < 0.9 ? pick(ops) : pick(['slot', 'eval', 'then', 'capacity']),
      };
      params.args = Array.from({ length: Math.floor(random() * 4) }, () => (random() < 0.3 ? 5 : pick(values)));
      // Waits get a short timeout (or a wrong one), so each ends within the test.
      const timeout = pick([0, 5, 20, -1, 'soon']);
      if (params.op === 'acquire') params.args = [pick(values), timeout];
      if (params.op === 'wait' || (kind === 'queue' && params.op === 'get')) params.args = [timeout];
      if (kind === 'queue' && params.op === 'put') params.args = [pick(values), timeout];
      if (random() < 0.2) params.init = pick([{ permits: 2 }, { capacity: 3 }, { permits: 'x' }, {}, 'init']);
      calls.push(
        c.call('state.call', params).then(
          () => 'ok',
          (error: { code: string }) => error.code,
        ),
      );
    }
    const outcomes = await Promise.race([
      Promise.all(calls),
      new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`seed ${seed}: not every call was answered within 20 s`)), 20_000)),
    ]);
    expect(
      outcomes.filter((o) => ['ERR_INTERNAL', 'ERR_STATE_INTERNAL', 'ERR_ADMIN_CLOSED', 'ERR_ADMIN_PROTOCOL'].includes(o as string)),
      `seed ${seed}`,
    ).toEqual([]);
    expect(new Set(outcomes).size, `seed ${seed}: both answers and refusals`).toBeGreaterThan(2);
    expect(await c.ping(), `seed ${seed}`).toMatchObject({ pong: true });
  });

  it('answers a result its own client could not read (a "__proto__" key, deep nesting) with ERR_RESULT_SHAPE, and keeps serving', async () => {
    const { store, connect } = await serve();
    const c = await connect();
    const events: StateChange[] = [];
    await c.state.watch('deep', (change) => events.push(change));
    // Workers may store both: the store keeps "__proto__" as a plain field.
    expect(await call(c, 'namespace', 'n', 'set', ['__proto__', 1])).toBeNull();
    let deep: unknown = 'bottom';
    for (let i = 0; i < 80; i++) deep = [deep];
    await store.local.value('deep').set(deep);
    await waitFor(() => events.length === 1);
    expect(events[0]).toMatchObject({ name: 'deep', op: 'set', truncated: true });
    await expect(call(c, 'namespace', 'n', 'toObject')).rejects.toMatchObject({
      code: 'ERR_RESULT_SHAPE',
      message: expect.stringMatching(/"__proto__"/),
    });
    await expect(call(c, 'value', 'deep', 'get')).rejects.toMatchObject({
      code: 'ERR_RESULT_SHAPE',
      message: expect.stringMatching(/deeper than 64/),
    });
    expect(await call(c, 'namespace', 'n', 'get', ['__proto__'])).toBe(1);
    expect(await c.ping()).toMatchObject({ pong: true });
  });

  it('needs call and release together', async () => {
    const store = storeForTest();
    const { release: _release, ...state } = adminStateApi(store);
    await expect(
      startAdminServer({ api: { ...memoryApi().api, state }, dir: tempDir(), logger: silentLogger, authkey: TEST_KEY, env: {} }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(/api\.state\.call and api\.state\.release go together/),
    });
  });
});
