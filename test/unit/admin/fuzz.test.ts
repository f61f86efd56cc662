import { describe, expect, it } from 'vitest';
import { connectAdmin } from '../../../src/admin/client.js';
import { clientForTest, memoryApi, rawConnection, serverForTest, TEST_KEY, waitFor, type RawConnection } from './fixtures.js';

/**
 * Hostile input from authenticated and unauthenticated peers must cost each of them its own
 * request or connection, never the server or another client. Inputs come from a seeded generator
 * so a failure can be replayed: the seed is in every assertion message.
 */
const SEED = Number(process.env.WHARF_FUZZ_SEED ?? Date.now() % 1_000_000);
const MAX_FRAME = 64 * 1024;

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
const framed = (body: Buffer | string) => {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  return Buffer.concat([head, data]);
};

/** Well-framed bodies a connection must survive, each answered by exactly one reply. */
function hostileBody(id: number): { body: Buffer | string; ok: boolean } {
  const req = (value: unknown) => JSON.stringify(value);
  const cases: (() => { body: Buffer | string; ok: boolean })[] = [
    () => ({ body: bytes(1 + int(200)), ok: false }),
    () => ({ body: req({ v: 1, id, method: 'state.get', params: { name: 'counter' } }).slice(0, 1 + int(50)), ok: false }),
    () => ({ body: req({ v: pick([0, 2, -1, '1', null, 1.5, true, [], {}]), id, method: 'ping' }), ok: false }),
    () => ({
      // eslint-disable-next-line no-loss-of-precision -- an id that overflows to Infinity is the point
      body: req({ v: 1, id: pick([-1, 1.5, '7', null, [], 1e309, 2 ** 60]), method: 'ping' }).replace('null', pick(['null', '1e309'])),
      ok: false,
    }),
    () => ({
      body: req({
        v: 1,
        id,
        method: pick([
          '',
          '__proto__',
          'constructor',
          'toString',
          'hasOwnProperty',
          'valueOf',
          'state',
          'state.',
          'STATE.GET',
          'state.get ',
          'x'.repeat(65),
          'prototype',
        ]),
      }),
      ok: false,
    }),
    () => ({
      body: req({
        v: 1,
        id,
        method: 'state.get',
        params: pick([{ name: 5 }, { name: '' }, { name: 'x'.repeat(257) }, { name: 'counter', more: 1 }, [], 'counter', 42]),
      }),
      ok: false,
    }),
    () => ({ body: req({ v: 1, id, method: 'state.get', params: { name: `missing-${int(1e6)}\ud800` } }), ok: false }),
    () => ({
      body: req({
        v: 1,
        id,
        method: 'state.set',
        params: pick([{ name: 'fuzz-target' }, { name: 'fuzz-target', value: 1, kind: 'Not A Kind' }, { name: 7, value: 1 }]),
      }),
      ok: false,
    }),
    () => ({
      body: req({
        v: 1,
        id,
        method: 'scale',
        params: pick([
          { service: 'tony', consumers: -1 },
          { service: 'tony', consumers: 1.5 },
          { service: 'tony', consumers: '2' },
          { service: `ghost-${int(100)}`, consumers: 1 },
        ]),
      }),
      ok: false,
    }),
    () => ({
      body: req({
        v: 1,
        id,
        method: pick(['state.watch', 'state.unwatch']),
        params: pick([{ name: 5 }, { watch: -1 }, { watch: 'x' }, { other: 1 }]),
      }),
      ok: false,
    }),
    () => ({ body: req({ v: 1, id, method: 'ping', extra: 'key' }), ok: false }),
    // Prototype pollution, every way a JSON text can spell it.
    () => ({ body: `{"__proto__":{"polluted":true},"v":1,"id":${id},"method":"ping"}`, ok: false }),
    () => ({
      body: `{"v":1,"id":${id},"method":"state.set","params":{"name":"fuzz-target","value":{"__proto__":{"polluted":true}}}}`,
      ok: false,
    }),
    () => ({
      body: `{"v":1,"id":${id},"method":"state.set","params":{"name":"fuzz-target","value":[{"a":{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":1}}}]}}`,
      ok: false,
    }),
    () => ({ body: `{"v":1,"id":${id},"method":"state.get","params":{"__proto__":{"name":"counter"}}}`, ok: false }),
    // Harmless as data: stored as given, and must not reach any prototype.
    () => ({
      body: `{"v":1,"id":${id},"method":"state.set","params":{"name":"fuzz-target","value":{"constructor":{"prototype":{"polluted":true}}}}}`,
      ok: true,
    }),
    () => ({ body: '['.repeat(65) + ']'.repeat(65), ok: false }),
    () => ({
      body: `{"v":1,"id":${id},"method":"state.set","params":{"name":"fuzz-target","value":${'['.repeat(70)}${']'.repeat(70)}}}`,
      ok: false,
    }),
    () => ({ body: pick(['null', 'true', '0', '""', '[]', '{}', ' ', '\u0000', '\ufeff{}']), ok: false }),
  ];
  return pick(cases)();
}

/** Byte sequences that break framing: the connection is told why and closed. */
function framingBreaker(): Buffer {
  const head = Buffer.alloc(4);
  return pick([
    () => head, // zero length
    () => (head.writeUInt32BE(MAX_FRAME + 1 + int(1 << 30)), head), // a declared length over the limit, no body
    () => (head.writeUInt32BE(0xffff_ffff), Buffer.concat([head, bytes(int(1000))])),
    () => framed(Buffer.alloc(MAX_FRAME + 1 + int(MAX_FRAME), 0x20)), // a real oversized frame, sent whole
    () => Buffer.concat([Buffer.from([0x80 | int(128)]), bytes(3 + int(100))]), // random bytes, huge first byte
  ])();
}

/** Writes `data` in random slices, so frames straddle and share chunks. */
async function writeSliced(raw: RawConnection, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length;) {
    const size = 1 + int(pick([3, 100, 5_000, 70_000]));
    const ok = raw.socket.write(data.subarray(at, at + size));
    at += size;
    if (!ok) await new Promise((done) => raw.socket.once('drain', done));
  }
}

/** Garbage that never completes a frame (a short prefix, or a length not yet reached) waits for the auth timeout. */
function expectedAnswer(garbage: Buffer): string {
  if (garbage.length < 4) return 'ERR_AUTH_TIMEOUT';
  const length = garbage.readUInt32BE(0);
  if (length === 0 || length > 1024) return 'ERR_AUTH';
  return garbage.length - 4 >= length ? 'ERR_AUTH' : 'ERR_AUTH_TIMEOUT';
}

async function inParallel(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

describe('admin server under hostile input', () => {
  it(`survives 10,000 random and malformed frames while another client keeps getting correct answers (seed ${SEED})`, async () => {
    const memory = memoryApi({ counter: { kind: 'counter', value: 7 }, profile: { kind: 'map', value: { a: 1 } } });
    const server = await serverForTest(memory.api, { limits: { maxFrameBytes: MAX_FRAME, authFailureDelayMs: 0, authTimeoutMs: 1_000 } });
    const good = await clientForTest({ dir: server.dir });
    let polling = true;
    let answers = 0;
    const poller = (async () => {
      while (polling) {
        expect(await good.state.get('counter'), `seed ${SEED}`).toEqual({ name: 'counter', kind: 'counter', value: 7 });
        expect((await good.status()).services.map((s) => s.name)).toEqual(['tony', 'jarvis']);
        answers += 1;
      }
    })();
    poller.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    const at = (what: string) => `${what} (seed ${SEED})`;
    let sent = 0;

    // 1. Well-framed hostile frames on authenticated connections: one error reply each, connection kept.
    for (let batch = 0; batch < 19; batch += 1) {
      const raw = await rawConnection(server.address);
      await raw.authenticate();
      const expected = Array.from({ length: 500 }, (_, i) => hostileBody(batch * 1000 + i));
      await writeSliced(raw, Buffer.concat(expected.map((e) => framed(e.body))));
      sent += expected.length;
      await waitFor(() => raw.frames.length >= 2 + expected.length, { message: at(`500 replies in batch ${batch}`), timeoutMs: 20_000 });
      const replies = raw.frames.slice(2);
      expect(replies, at('one reply per frame')).toHaveLength(expected.length);
      expect(replies.filter((r) => r.ok === true).length, at('successful replies')).toBe(expected.filter((e) => e.ok).length);
      for (const reply of replies) expect(reply, at('reply shape')).toMatchObject({ v: 1, ok: expect.any(Boolean) });
      expect(raw.isClosed(), at('the connection stays open')).toBe(false);
      raw.socket.destroy();
    }

    // 2. Framing breakers after a good request: the reply, then one error, then the close.
    await inParallel(250, 8, async () => {
      const raw = await rawConnection(server.address);
      await raw.authenticate();
      await writeSliced(raw, Buffer.concat([framed(JSON.stringify({ v: 1, id: 1, method: 'ping' })), framingBreaker()]));
      sent += 2;
      await raw.closed;
      const [reply, error] = raw.frames.slice(2);
      expect(reply, at('the ping before the breaker')).toMatchObject({ id: 1, ok: true });
      expect(error, at('why the connection closed')).toMatchObject({
        id: null,
        ok: false,
        error: { code: expect.stringMatching(/^ERR_(FRAME_TOO_LARGE|BAD_FRAME)$/) },
      });
      expect(raw.frames).toHaveLength(4);
    });

    // 3. Garbage instead of authenticating: ERR_AUTH and close, whatever the garbage.
    await inParallel(250, 8, async () => {
      const raw = await rawConnection(server.address);
      await raw.frame(1);
      const garbage = pick([() => bytes(1 + int(300)), () => framed(hostileBody(1).body), framingBreaker])();
      await writeSliced(raw, garbage);
      sent += 1;
      await raw.closed;
      expect(
        raw.frames.slice(1).map((f) => (f.error as { code: string }).code),
        at('the answer to garbage'),
      ).toEqual([expectedAnswer(garbage)]);
    });

    polling = false;
    await poller;
    expect(sent, at('frames sent')).toBeGreaterThanOrEqual(10_000);
    expect(answers, at('answers to the well-behaved client during the run')).toBeGreaterThan(50);
    expect(({} as Record<string, unknown>).polluted, at('Object.prototype')).toBeUndefined();
    expect(Object.getPrototypeOf(memory.objects.get('fuzz-target')?.value ?? {}), at('stored data')).toBe(Object.prototype);
    memory.objects.delete('fuzz-target');
    expect(Object.fromEntries(memory.objects), at('the state')).toEqual({
      counter: { kind: 'counter', value: 7 },
      profile: { kind: 'map', value: { a: 1 } },
    });
    expect(memory.listenerCount(), at('watches left behind')).toBe(0);
    expect(await good.ping()).toMatchObject({ pong: true });
    const late = await connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} });
    try {
      expect(await late.state.get('profile')).toMatchObject({ value: { a: 1 } });
    } finally {
      await late.close();
    }
  });
});
