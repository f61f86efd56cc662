import { describe, expect, it } from 'vitest';
import { connectAdmin } from '../../../src/admin/client.js';
import type { StateChange } from '../../../src/admin/protocol.js';
import { clientForTest, memoryApi, rawConnection, serverForTest, TEST_KEY, waitFor } from './fixtures.js';

describe('admin server limits', () => {
  it('refuses connections beyond maxConnections with a clear error, and admits again when one closes', async () => {
    const server = await serverForTest(memoryApi().api, { limits: { maxConnections: 2 } });
    const first = await clientForTest({ dir: server.dir });
    await clientForTest({ dir: server.dir });
    await expect(connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} })).rejects.toMatchObject({
      code: 'ERR_TOO_MANY_CONNECTIONS',
      retriable: true,
      message: expect.stringMatching(/already serves 2 admin connections/),
    });
    await first.close();
    const third = await waitFor(() => connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} }).catch(() => undefined), {
      message: 'a free connection slot',
    });
    expect(await third.ping()).toMatchObject({ pong: true });
    await third.close();
  });

  it('counts connections that have not authenticated yet', async () => {
    const server = await serverForTest(memoryApi().api, { limits: { maxConnections: 1 } });
    const silent = await rawConnection(server.address);
    await silent.frame(1);
    await expect(connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} })).rejects.toMatchObject({ code: 'ERR_TOO_MANY_CONNECTIONS' });
  });

  it('closes an idle connection, but not one that watches', async () => {
    const memory = memoryApi();
    const server = await serverForTest(memory.api, { limits: { idleTimeoutMs: 300 } });
    const watcher = await clientForTest({ dir: server.dir });
    let watcherClosed = false;
    void watcher.closed.then(() => (watcherClosed = true));
    const changes: StateChange[] = [];
    await watcher.state.watch(undefined, (change) => changes.push(change));
    // Connected after the watcher's last request, so its idle timer fires after the watcher's would.
    const idle = await clientForTest({ dir: server.dir });
    const reason = await idle.closed;
    expect(reason).toMatchObject({ code: 'ERR_IDLE_TIMEOUT', message: 'closed after 300 ms without a request' });
    await expect(idle.ping()).rejects.toMatchObject({ code: 'ERR_ADMIN_CLOSED' });
    expect(watcherClosed).toBe(false);
    memory.api.state.set('still', 'here');
    await waitFor(() => changes.length === 1, { message: 'the watcher to get the change' });
    expect(await watcher.ping()).toMatchObject({ pong: true });
  });

  it('answers ERR_BUSY past maxInFlightPerConnection, and serves again once requests finish', async () => {
    const { api } = memoryApi();
    const waiting: (() => void)[] = [];
    api.extra = { 'test.hang': () => new Promise((done) => waiting.push(() => done('done'))) };
    const server = await serverForTest(api, { limits: { maxInFlightPerConnection: 2 } });
    const client = await clientForTest({ dir: server.dir });
    const hung = [client.call('test.hang'), client.call('test.hang')];
    await expect(client.call('test.hang')).rejects.toMatchObject({ code: 'ERR_BUSY', retriable: true });
    expect(await client.ping(), 'synchronous methods are not held up').toMatchObject({ pong: true });
    await waitFor(() => waiting.length === 2, { message: 'both calls to reach the API' });
    waiting.splice(0).forEach((release) => release());
    expect(await Promise.all(hung)).toEqual(['done', 'done']);
    const again = client.call('test.hang');
    await waitFor(() => waiting.length === 1, { message: 'the third call to reach the API' });
    waiting[0]!();
    expect(await again).toBe('done');
  });

  it('limits watches per connection', async () => {
    const memory = memoryApi();
    const server = await serverForTest(memory.api, { limits: { maxWatchesPerConnection: 2 } });
    const client = await clientForTest({ dir: server.dir });
    const first = await client.state.watch('a', () => undefined);
    await client.state.watch('b', () => undefined);
    await expect(client.state.watch('c', () => undefined)).rejects.toMatchObject({ code: 'ERR_TOO_MANY_WATCHES' });
    await first.unsubscribe();
    await client.state.watch('c', () => undefined);
    expect(memory.listenerCount()).toBe(2);
  });

  it('drops a watcher that stops reading instead of buffering without end', async () => {
    const memory = memoryApi();
    const server = await serverForTest(memory.api, { limits: { maxBufferedBytes: 256 * 1024 } });
    const stalled = await rawConnection(server.address);
    await stalled.authenticate();
    stalled.send({ v: 1, id: 1, method: 'state.watch', params: {} });
    await waitFor(() => stalled.frames.find((f) => f.id === 1 && f.ok === true), { message: 'the watch to start' });
    stalled.socket.pause();
    const writer = await clientForTest({ dir: server.dir });
    const big = 'x'.repeat(64 * 1024);
    await waitFor(
      async () => {
        await writer.state.set('big', big);
        return stalled.isClosed() || memory.listenerCount() === 0;
      },
      { message: 'the stalled watcher to be dropped', timeoutMs: 20_000 },
    );
    expect(memory.listenerCount()).toBe(0);
    expect(await writer.ping()).toMatchObject({ pong: true });
  });

  it('tells connected clients it is shutting down when closed', async () => {
    const server = await serverForTest(memoryApi().api);
    const client = await connectAdmin({ dir: server.dir, authkey: TEST_KEY, env: {} });
    const raw = await rawConnection(server.address);
    await raw.frame(1);
    await server.close();
    expect(await client.closed).toMatchObject({ code: 'ERR_SHUTTING_DOWN', message: 'the supervisor is shutting down' });
    await raw.closed;
  });
});
