import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startWharf, type WharfOptions } from '../../src/app/start.js';
import { connectAdmin } from '../../src/admin/client.js';
import { parseConfig } from '../../src/config/load.js';
import { resolveBroker } from '../../src/kafka/broker.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, testBrokers, testLogger, uniqueName, waitFor } from '../helpers.js';

/**
 * startWharf, the one assembly behind `npm start`, the tests and library users: what it starts is
 * released when it stops, and when a start fails half-way, what the earlier steps started is
 * released too (broker lease, persistence's Kafka clients, the admin socket and its connection file).
 */

/** A broker resolution on the run's broker that counts its releases, as a local broker's lease would be counted. */
function countedBroker() {
  const lease = { resolved: 0, released: 0 };
  const resolve: WharfOptions['resolveBroker'] = async (options) => {
    const broker = await resolveBroker({ ...options, env: { KAFKA_BROKERS: testBrokers().join(',') } });
    lease.resolved++;
    return { ...broker, release: async () => void lease.released++ };
  };
  return { lease, resolve };
}

function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-start-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Open TCP sockets of this process (each test file runs in a process of its own). */
const tcpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

function config(services: unknown[], state?: Record<string, unknown>) {
  return parseConfig(
    {
      services,
      supervisor: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 3_000, drainTimeoutMs: 15_000 },
      kafka: { sessionTimeoutMs: 6_000, clientId: uniqueName('wharf') },
      ...(state ? { state } : {}),
    },
    'test',
    process.cwd(),
  );
}

describe('startWharf', () => {
  it('runs observers, serves the admin socket, and releases everything at stop', { timeout: 90_000 }, async () => {
    const dir = tempHome();
    const { lease, resolve } = countedBroker();
    const printed: string[] = [];
    const wharf = await startWharf({
      config: config([
        { module: SERVICE_MODULES.fixture('observed'), workers: { producer: 1 } },
        {
          module: SERVICE_MODULES.fixture('echo'),
          workers: { consumer: 1 },
          consumes: { topics: [uniqueName('in')], groupId: uniqueName('echo') },
        },
      ]),
      env: {},
      logger: testLogger(),
      resolveBroker: resolve,
      admin: { dir },
      print: (line) => printed.push(line),
    });
    let stopped = false;
    onTestFinished(async () => {
      if (!stopped) await wharf.stop();
    });
    expect(lease).toEqual({ resolved: 1, released: 0 });
    // A service's `observe` runs for a library user too (createSupervisor alone runs none).
    await waitFor(() => printed.some((line) => /^tick \d+$/.test(line)), { timeoutMs: 30_000, message: 'a tick printed by the observer' });
    // It watches the supervisor's store: a change made there is printed too.
    await wharf.store.local.value('observed.tick').set(-1);
    await waitFor(() => printed.includes('tick -1'), { timeoutMs: 5_000, message: 'the observer to print a change made in the store' });
    const client = await connectAdmin({ dir, env: {} });
    try {
      expect((await client.status()).services.map((s) => s.health)).toEqual(['healthy', 'healthy']);
    } finally {
      await client.close();
    }
    expect(existsSync(wharf.admin!.connectionFile)).toBe(true);

    const result = await wharf.stop();
    stopped = true;
    expect(result).toMatchObject({ ok: true, unfinished: [], persisted: true, failed: [] });
    expect(await wharf.stop()).toBe(result);
    expect(lease).toEqual({ resolved: 1, released: 1 });
    expect(readdirSync(dir)).toEqual([]);
    expect(wharf.supervisor.status().workers.every((w) => w.state === 'stopped' && w.threadId === null)).toBe(true);
  });

  it('releases the broker, persistence and the admin socket when the admin socket cannot be bound', { timeout: 60_000 }, async () => {
    const dir = tempHome();
    const { lease, resolve } = countedBroker();
    // A port that is taken: the admin server cannot listen on it.
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => taken.close(() => r())));
    const port = (taken.address() as { port: number }).port;
    const before = tcpSockets();

    const start = startWharf({
      config: config(
        [
          {
            module: SERVICE_MODULES.fixture('echo'),
            workers: { consumer: 1 },
            consumes: { topics: [uniqueName('in')], groupId: uniqueName('echo') },
          },
        ],
        { persist: ['kept*'], topic: uniqueName('state') },
      ),
      env: {},
      logger: testLogger(),
      resolveBroker: resolve,
      admin: { dir, transport: 'tcp', port },
    });
    await expect(start).rejects.toThrow(/cannot listen for admin connections on 127.0.0.1:\d+: .*EADDRINUSE/);
    expect(lease).toEqual({ resolved: 1, released: 1 });
    // Nothing left for `npm run admin` to find, and the changelog's Kafka clients are closed.
    expect(readdirSync(dir)).toEqual([]);
    await waitFor(() => tcpSockets() <= before, {
      timeoutMs: 10_000,
      message: `the persistence clients to disconnect (${tcpSockets()} sockets open, ${before} before)`,
    });
  });

  it(
    'fails with the restore error and releases the broker lease when the changelog holds what is not wharf state',
    { timeout: 60_000 },
    async () => {
      const dir = tempHome();
      const { lease, resolve } = countedBroker();
      const kafka = kafkaForTest();
      const stateTopic = await createTopic(await kafka.admin(), uniqueName('state'), 2);
      // A record of some other program in each partition.
      await (
        await kafka.producer()
      ).send({ topic: stateTopic, messages: [0, 1].map((partition) => ({ partition, key: 'user:1', value: '{}' })) });
      const before = tcpSockets();

      const start = startWharf({
        config: config(
          [
            {
              module: SERVICE_MODULES.fixture('echo'),
              workers: { consumer: 1 },
              consumes: { topics: [uniqueName('in')], groupId: uniqueName('echo') },
            },
          ],
          { persist: ['*'], topic: stateTopic },
        ),
        env: {},
        logger: testLogger(),
        resolveBroker: resolve,
        admin: { dir },
      });
      await expect(start).rejects.toThrow(/has a key that is not a wharf state key: "user:1"/);
      expect(lease).toEqual({ resolved: 1, released: 1 });
      expect(readdirSync(dir)).toEqual([]);
      await waitFor(() => tcpSockets() <= before, {
        timeoutMs: 10_000,
        message: `the changelog's clients to disconnect (${tcpSockets()} sockets open, ${before} before)`,
      });
    },
  );
});
