import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectAdmin } from '../../../src/admin/client.js';
import type { StateChange } from '../../../src/admin/protocol.js';
import { startAdminServer } from '../../../src/admin/server.js';
import { MAX_UNIX_PATH_BYTES } from '../../../src/admin/connection-file.js';
import { clientForTest, memoryApi, serverForTest, silentLogger, tempDir, TEST_KEY, waitFor } from './fixtures.js';

describe('admin server', () => {
  it('lets two clients see the same state', async () => {
    const { api } = memoryApi({ hits: { kind: 'counter', value: 3 } });
    const server = await serverForTest(api);
    const a = await clientForTest({ dir: server.dir });
    const b = await clientForTest({ dir: server.dir });
    await a.state.set('greeting', { text: 'hello' }, 'value');
    expect(await b.state.get('greeting')).toEqual({ name: 'greeting', kind: 'value', value: { text: 'hello' } });
    expect(await b.state.describe()).toEqual([
      { name: 'hits', kind: 'counter', size: 1 },
      { name: 'greeting', kind: 'value', size: 1 },
    ]);
    expect(await b.state.delete('greeting')).toBe(true);
    expect(await a.state.get('greeting')).toBeUndefined();
    expect(await a.state.delete('greeting')).toBe(false);
    expect(await a.state.snapshot()).toEqual({ hits: { kind: 'counter', value: 3 } });
  });

  it('streams changes to a watcher until it unsubscribes, and forgets watches of closed connections', async () => {
    const memory = memoryApi();
    const server = await serverForTest(memory.api);
    const watcher = await clientForTest({ dir: server.dir });
    const writer = await clientForTest({ dir: server.dir });
    const seen: StateChange[] = [];
    const all: StateChange[] = [];
    const watch = await watcher.state.watch('jobs', (change) => seen.push(change));
    await watcher.state.watch(undefined, (change) => all.push(change));
    await writer.state.set('jobs', [1]);
    await writer.state.set('other', 1);
    await writer.state.set('jobs', [1, 2]);
    await writer.state.delete('jobs');
    await waitFor(() => seen.length === 3 && all.length === 4, { message: 'three changes of jobs, four in all', timeoutMs: 5_000 });
    expect(seen.map((c) => [c.op, c.value])).toEqual([
      ['set', [1]],
      ['set', [1, 2]],
      ['delete', undefined],
    ]);
    await watch.unsubscribe();
    await writer.state.set('jobs', [3]);
    await waitFor(() => all.length === 5, { message: 'the catch-all watch sees the fifth change', timeoutMs: 5_000 });
    expect(seen).toHaveLength(3);
    expect(memory.listenerCount()).toBe(1);
    await watcher.close();
    await waitFor(() => memory.listenerCount() === 0, { message: 'the server to drop the closed connection’s watch', timeoutMs: 5_000 });
  });

  it('reports status, scales services and forwards the API’s errors with their codes', async () => {
    const server = await serverForTest(memoryApi().api);
    const client = await clientForTest({ dir: server.dir });
    const status = await client.scale('tony', 3);
    expect(status.services.find((s) => s.name === 'tony')?.workers.consumer).toBe(3);
    expect((await client.status()).workers.filter((w) => w.service === 'tony')).toHaveLength(3);
    await expect(client.scale('nobody', 1)).rejects.toMatchObject({
      code: 'ERR_UNKNOWN_SERVICE',
      message: expect.stringMatching(/no service named "nobody"/),
    });
    await expect(client.scale('tony', 65)).rejects.toMatchObject({
      code: 'ERR_BAD_PARAMS',
      message: 'scale: "consumers" must be a whole number from 1 to 64',
    });
    await expect(client.call('scale', { service: 'tony', consumers: 0 })).rejects.toMatchObject({ code: 'ERR_BAD_PARAMS' });
    await expect(client.call('state.get', { name: 'x', extra: 1 })).rejects.toMatchObject({ code: 'ERR_BAD_PARAMS' });
    await expect(client.call('state.set', { name: 'x' })).rejects.toMatchObject({
      code: 'ERR_BAD_PARAMS',
      message: expect.stringMatching(/"value" is required/),
    });
    await expect(client.call('toString')).rejects.toMatchObject({ code: 'ERR_UNKNOWN_METHOD' });
    await expect(client.call('__proto__')).rejects.toMatchObject({ code: 'ERR_UNKNOWN_METHOD' });
    expect(await client.ping()).toMatchObject({ pong: true, pid: process.pid });
  });

  it('turns a failing API method into ERR_INTERNAL for that request only', async () => {
    const { api } = memoryApi();
    api.state.describe = () => {
      throw new TypeError('boom');
    };
    const server = await serverForTest(api);
    const client = await clientForTest({ dir: server.dir });
    await expect(client.state.describe()).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: 'internal error: boom' });
    expect(await client.state.snapshot()).toEqual({});
  });

  it('serves extra methods, and refuses names that clash with built-ins', async () => {
    const { api } = memoryApi();
    api.extra = { 'dlq.list': async (params) => ({ echoed: params }) };
    const server = await serverForTest(api);
    const client = await clientForTest({ dir: server.dir });
    expect(client.server.methods).toContain('dlq.list');
    expect(await client.call('dlq.list', { topic: 't' })).toEqual({ echoed: { topic: 't' } });
    await expect(
      startAdminServer({ api: { ...api, extra: { status: async () => 1 } }, dir: tempDir(), logger: silentLogger, authkey: TEST_KEY }),
    ).rejects.toThrow(/api\.extra\.status cannot be an admin method/);
  });

  it('answers a result over the reply limit with ERR_RESULT_TOO_LARGE and keeps the connection', async () => {
    const { api } = memoryApi({ big: { kind: 'value', value: 'x'.repeat(5_000) } });
    const server = await serverForTest(api, { limits: { maxReplyBytes: 4_096 } });
    const client = await clientForTest({ dir: server.dir });
    await expect(client.state.get('big')).rejects.toMatchObject({ code: 'ERR_RESULT_TOO_LARGE' });
    expect(await client.ping()).toMatchObject({ pong: true });
  });

  it('sends a change too large for a frame as a truncated event', async () => {
    const memory = memoryApi();
    const server = await serverForTest(memory.api, { limits: { maxReplyBytes: 4_096 } });
    const client = await clientForTest({ dir: server.dir });
    const seen: unknown[] = [];
    await client.state.watch('big', (change) => seen.push(change));
    memory.api.state.set('big', 'x'.repeat(5_000));
    memory.api.state.set('big', 'small');
    await waitFor(() => seen.length === 2, { message: 'two events' });
    expect(seen).toEqual([
      { name: 'big', kind: 'value', op: 'set', at: expect.any(Number), truncated: true },
      { name: 'big', kind: 'value', op: 'set', value: 'small', at: expect.any(Number) },
    ]);
  });

  it('writes a connection file, a 0600 socket and a 0600 key file, and removes them on close', async () => {
    const dir = tempDir();
    const server = await startAdminServer({ api: memoryApi().api, dir, logger: silentLogger, env: {} });
    try {
      const info = JSON.parse(readFileSync(join(dir, 'admin.json'), 'utf8'));
      expect(info).toEqual({
        version: 1,
        pid: process.pid,
        transport: 'unix',
        address: join(dir, 'admin.sock'),
        keyFile: join(dir, 'admin.key'),
        startedAt: expect.any(String),
      });
      expect(statSync(info.address).mode & 0o777).toBe(0o600);
      expect(statSync(info.keyFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(info.keyFile, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
      // Found with no flags and no key in the environment: the key file does it.
      const client = await connectAdmin({ dir, env: {} });
      expect(await client.ping()).toMatchObject({ pid: process.pid });
      await client.close();
    } finally {
      await server.close();
    }
    expect(existsSync(join(dir, 'admin.json'))).toBe(false);
    expect(existsSync(join(dir, 'admin.key'))).toBe(false);
    expect(existsSync(join(dir, 'admin.sock'))).toBe(false);
  });

  it('falls back to a short private socket path when the folder’s path is too long for a socket', async () => {
    const dir = join(tempDir(), 'a'.repeat(60), 'b'.repeat(60));
    mkdirSync(dir, { recursive: true });
    expect(Buffer.byteLength(join(dir, 'admin.sock'))).toBeGreaterThan(MAX_UNIX_PATH_BYTES);
    const server = await serverForTest(memoryApi().api, { dir });
    const info = JSON.parse(readFileSync(join(dir, 'admin.json'), 'utf8'));
    expect(info.address).toBe(server.address);
    expect(Buffer.byteLength(info.address)).toBeLessThanOrEqual(MAX_UNIX_PATH_BYTES);
    expect(statSync(join(info.address, '..')).mode & 0o777).toBe(0o700);
    const client = await clientForTest({ dir });
    expect(await client.ping()).toMatchObject({ pong: true });
    await client.close();
    await server.close();
    expect(existsSync(info.address)).toBe(false);
  });

  it('serves TCP on 127.0.0.1 when asked, and the key from WHARF_AUTHKEY is recorded as "env"', async () => {
    const dir = tempDir();
    const server = await serverForTest(memoryApi().api, { dir, transport: 'tcp', authkey: undefined, env: { WHARF_AUTHKEY: TEST_KEY } });
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(JSON.parse(readFileSync(join(dir, 'admin.json'), 'utf8'))).toMatchObject({ transport: 'tcp', keyFile: 'env' });
    expect(existsSync(join(dir, 'admin.key'))).toBe(false);
    await expect(connectAdmin({ dir, env: {} })).rejects.toThrow(/takes its key from WHARF_AUTHKEY: set it/);
    const client = await clientForTest({ dir, authkey: undefined, env: { WHARF_AUTHKEY: TEST_KEY } });
    expect(await client.ping()).toMatchObject({ pong: true });
    const byAddress = await clientForTest({ address: server.address, dir: tempDir() });
    expect(await byAddress.ping()).toMatchObject({ pong: true });
  });

  it('refuses a second server in the same folder, and a key too short to be safe', async () => {
    const server = await serverForTest(memoryApi().api);
    await expect(
      startAdminServer({ api: memoryApi().api, dir: server.dir, logger: silentLogger, authkey: TEST_KEY }),
    ).rejects.toMatchObject({
      code: 'ERR_ADMIN_IN_USE',
      message: expect.stringContaining(`a supervisor (pid ${process.pid}) already serves the admin socket`),
    });
    await expect(
      startAdminServer({ api: memoryApi().api, dir: tempDir(), logger: silentLogger, env: { WHARF_AUTHKEY: 'short' } }),
    ).rejects.toThrow(/WHARF_AUTHKEY must be at least 16 characters/);
  });

  it('says no supervisor is running when there is no connection file, or its pid has exited', async () => {
    const dir = tempDir();
    await expect(connectAdmin({ dir, env: {} })).rejects.toMatchObject({
      code: 'ERR_NO_SUPERVISOR',
      message: `no supervisor running in ${dir}: start one with npm start`,
    });
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(exited.stdout);
    writeFileSync(
      join(dir, 'admin.json'),
      JSON.stringify({ version: 1, pid, transport: 'unix', address: join(dir, 'admin.sock'), keyFile: 'env', startedAt: '' }),
    );
    await expect(connectAdmin({ dir, env: {} })).rejects.toThrow(
      new RegExp(`^no supervisor running in ${dir} \\(admin\\.json names pid ${pid}, which has exited\\): start one with npm start$`),
    );
    // A live pid whose socket is gone (a supervisor killed without cleanup, pid reused).
    writeFileSync(
      join(dir, 'admin.json'),
      JSON.stringify({ version: 1, pid: process.pid, transport: 'unix', address: join(dir, 'admin.sock'), keyFile: 'env', startedAt: '' }),
    );
    await expect(connectAdmin({ dir, env: {}, authkey: TEST_KEY })).rejects.toThrow(
      /^no supervisor running in .*nothing answers at .*admin\.sock.*start one with npm start$/,
    );
    writeFileSync(join(dir, 'admin.json'), '{"version": 9}');
    await expect(connectAdmin({ dir, env: {} })).rejects.toThrow(/is not a wharf connection file/);
  });
});
