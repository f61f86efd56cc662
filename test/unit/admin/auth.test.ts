import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeProof, newNonce } from '../../../src/admin/auth.js';
import { connectAdmin } from '../../../src/admin/client.js';
import { encodeFrame } from '../../../src/admin/protocol.js';
import { memoryApi, rawConnection, serverForTest, tempDir, TEST_KEY, waitFor } from './fixtures.js';

const DELAY = 150;
const AUTH_FAILED =
  '{"v":1,"id":null,"ok":false,"error":{"code":"ERR_AUTH","message":"authentication failed: check WHARF_AUTHKEY or the key file named in the connection file"}}';

describe('admin authentication', () => {
  it('lets the right key in and turns a wrong one away, closing the connection', async () => {
    const server = await serverForTest(memoryApi({ secret: { kind: 'value', value: 's3cret' } }).api);
    const right = await connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} });
    expect(await right.state.get('secret')).toMatchObject({ value: 's3cret' });
    await right.close();
    await expect(connectAdmin({ dir: server.dir, authkey: 'not-the-key-0123456789', env: {} })).rejects.toMatchObject({
      code: 'ERR_AUTH',
      message: `authentication failed: the supervisor at ${server.address} rejected the key from the given authkey.`,
    });
    await expect(connectAdmin({ dir: server.dir, env: { WHARF_AUTHKEY: 'also-not-the-key-0123' } })).rejects.toThrow(
      /rejected the key from WHARF_AUTHKEY/,
    );
  });

  it('answers every kind of wrong first frame with the same bytes, after the same delay, and closes', async () => {
    const server = await serverForTest(memoryApi().api, { limits: { authFailureDelayMs: DELAY } });
    const nonce = () => newNonce().toString('hex');
    const attempts: Record<string, (serverNonce: Buffer) => Buffer> = {
      'a wrong key': (sn) => {
        const cn = newNonce();
        return encodeFrame(
          { v: 1, type: 'auth', nonce: cn.toString('hex'), proof: computeProof('wrong-key-0123456789', 'client', sn, cn).toString('hex') },
          1 << 20,
        );
      },
      'the server’s proof in place of the client’s': (sn) => {
        const cn = newNonce();
        return encodeFrame(
          { v: 1, type: 'auth', nonce: cn.toString('hex'), proof: computeProof(TEST_KEY, 'server', sn, cn).toString('hex') },
          1 << 20,
        );
      },
      'a proof for another challenge (replay)': () => {
        const cn = newNonce();
        return encodeFrame(
          { v: 1, type: 'auth', nonce: cn.toString('hex'), proof: computeProof(TEST_KEY, 'client', newNonce(), cn).toString('hex') },
          1 << 20,
        );
      },
      'a short proof': () => encodeFrame({ v: 1, type: 'auth', nonce: nonce(), proof: 'abcd' }, 1 << 20),
      'an upper-case proof': (sn) => {
        const cn = newNonce();
        return encodeFrame(
          { v: 1, type: 'auth', nonce: cn.toString('hex'), proof: computeProof(TEST_KEY, 'client', sn, cn).toString('hex').toUpperCase() },
          1 << 20,
        );
      },
      'an extra key': (sn) => {
        const cn = newNonce();
        return encodeFrame(
          { v: 1, type: 'auth', nonce: cn.toString('hex'), proof: computeProof(TEST_KEY, 'client', sn, cn).toString('hex'), admin: true },
          1 << 20,
        );
      },
      'another version': (sn) => {
        const cn = newNonce();
        return encodeFrame(
          { v: 2, type: 'auth', nonce: cn.toString('hex'), proof: computeProof(TEST_KEY, 'client', sn, cn).toString('hex') },
          1 << 20,
        );
      },
      'a request before authenticating': () => encodeFrame({ v: 1, id: 1, method: 'state.snapshot' }, 1 << 20),
      'bad JSON': () => Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('{"v":')]),
      'a zero length': () => Buffer.alloc(4),
      'a huge declared length': () => Buffer.from([0xff, 0xff, 0xff, 0xff]),
      'an auth frame over 1024 bytes': () => encodeFrame({ v: 1, type: 'auth', nonce: nonce(), proof: 'x'.repeat(2000) }, 1 << 20),
      'random bytes': () => Buffer.concat([Buffer.from([0, 0, 0, 40]), randomBytes(40)]),
    };
    await Promise.all(
      Object.entries(attempts).map(async ([what, make]) => {
        const raw = await rawConnection(server.address);
        const challenge = await raw.frame(1);
        const sent = performance.now();
        raw.socket.write(make(Buffer.from(challenge.nonce as string, 'hex')));
        await raw.frame(2, 5_000);
        const elapsed = performance.now() - sent;
        await raw.closed;
        expect(raw.bodies.slice(1).map(String), what).toEqual([AUTH_FAILED]);
        // setTimeout may fire a millisecond early by the wall clock; never a whole delay early.
        expect(elapsed, `${what}: answered after ${elapsed.toFixed(1)} ms`).toBeGreaterThanOrEqual(DELAY - 2);
      }),
    );
  });

  it('closes a connection that does not authenticate in time', async () => {
    const server = await serverForTest(memoryApi().api, { limits: { authTimeoutMs: 200 } });
    const raw = await rawConnection(server.address);
    await raw.closed;
    expect(raw.frames.map((f) => f.type ?? (f.error as { code: string }).code)).toEqual(['challenge', 'ERR_AUTH_TIMEOUT']);
  });

  it('does not trust a server that cannot prove it holds the key', async () => {
    // Something listening where the supervisor was, that does not know the key.
    const impostor = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write(
        encodeFrame(
          { v: 1, type: 'challenge', nonce: newNonce().toString('hex'), versions: [1], hmac: 'sha256', maxFrameBytes: 1 << 20 },
          1 << 20,
        ),
      );
      socket.once('data', () =>
        socket.write(encodeFrame({ v: 1, type: 'welcome', proof: randomBytes(32).toString('hex'), pid: 1, methods: [] }, 1 << 20)),
      );
    });
    const path = join(tempDir(), 'impostor.sock');
    await new Promise<void>((done) => impostor.listen(path, done));
    try {
      await expect(connectAdmin({ address: path, authkey: TEST_KEY, env: {}, dir: tempDir() })).rejects.toMatchObject({
        code: 'ERR_AUTH',
        message: expect.stringMatching(/did not prove it holds the same key: it is not the supervisor you expect/),
      });
    } finally {
      await new Promise((done) => impostor.close(done));
    }
  });

  it('reports a server that speaks another protocol version', async () => {
    const future = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write(
        encodeFrame(
          { v: 2, type: 'challenge', nonce: newNonce().toString('hex'), versions: [2], hmac: 'sha256', maxFrameBytes: 1 << 20 },
          1 << 20,
        ),
      );
    });
    const path = join(tempDir(), 'future.sock');
    await new Promise<void>((done) => future.listen(path, done));
    try {
      await expect(connectAdmin({ address: path, authkey: TEST_KEY, env: {}, dir: tempDir(), timeoutMs: 2_000 })).rejects.toMatchObject({
        code: 'ERR_ADMIN_PROTOCOL',
      });
    } finally {
      future.close();
    }
  });

  it('keeps serving an authenticated client while others fail to authenticate', async () => {
    const server = await serverForTest(memoryApi({ n: { kind: 'value', value: 1 } }).api, { limits: { authFailureDelayMs: 0 } });
    const good = await rawConnection(server.address);
    await good.authenticate();
    const failures = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const raw = await rawConnection(server.address);
        await raw.frame(1);
        raw.socket.write(Buffer.concat([Buffer.from([0, 0, 0, 8]), randomBytes(8)]));
        await raw.closed;
        return (raw.frames[1]?.error as { code: string } | undefined)?.code;
      }),
    );
    expect(new Set(failures)).toEqual(new Set(['ERR_AUTH']));
    good.send({ v: 1, id: 1, method: 'state.get', params: { name: 'n' } });
    expect(await waitFor(() => good.frames.find((f) => f.id === 1))).toEqual({
      v: 1,
      id: 1,
      ok: true,
      result: { name: 'n', kind: 'value', value: 1 },
    });
  });
});
