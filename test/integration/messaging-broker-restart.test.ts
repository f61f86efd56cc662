import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createKafka } from '../../src/kafka/client.js';
import { jarCacheDir } from '../../src/kafka/broker.js';
import { startLocalCluster, stopLocalCluster } from '../../src/kafka/local/cluster.js';
import { createTopics } from '../../src/kafka/topics.js';
import { stateHome } from '../../src/paths.js';
import { SERVICE_MODULES, startSupervisor, testLogger, uniqueName, waitFor } from '../helpers.js';

/**
 * A broker of this test's own (the run's broker is shared by every file): a local cluster in
 * .wharf/test-brokers/, marked with this process as its owner so the run's sweep leaves it alone
 * while the test runs, and stopped and removed when it ends. Started again with the same folder,
 * it keeps its data and its ports.
 */
async function ownBroker() {
  const logger = testLogger();
  const dir = join(stateHome(), 'test-brokers', uniqueName(`restart-${process.pid}`));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  onTestFinished(async () => {
    await stopLocalCluster({ dir, logger, timeoutMs: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (port?: number) =>
    (await startLocalCluster({ dir, cacheDir: jarCacheDir(), port, logger })).status.bootstrap.split(',');
  const brokers = await start(0);
  return { brokers, stop: () => stopLocalCluster({ dir, logger, timeoutMs: 20_000 }), start: () => start() };
}

describe('a broker restart', () => {
  it('is ridden out by producers and consumers on their own, losing nothing', { timeout: 240_000 }, async () => {
    const broker = await ownBroker();
    const topic = uniqueName('restart');
    const admin = createKafka({ brokers: broker.brokers, logger: testLogger() }).admin();
    await admin.connect();
    try {
      await createTopics(admin, [{ topic, numPartitions: 4 }]);
    } finally {
      await admin.disconnect();
    }
    // Through startWharf, as every test starts wharf; stopped when the test ends (test/helpers.ts).
    const supervisor = await startSupervisor(
      {
        services: [
          {
            module: SERVICE_MODULES.fixture('sequencer'),
            workers: { consumer: 2, producer: 1 },
            rate: 100,
            consumes: { topics: [topic], groupId: uniqueName('sequencer') },
            options: { topic },
          },
        ],
        supervisor: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 5_000, drainTimeoutMs: 30_000 },
        kafka: { sessionTimeoutMs: 6_000, clientId: uniqueName('wharf') },
      },
      { brokers: broker.brokers },
    );
    const size = (name: string) => Object.keys((supervisor.store.get(name)?.value ?? {}) as object).length;
    await waitFor(() => size('acked') >= 300 && size('handled') >= 300, { timeoutMs: 30_000, message: '300 messages through' });

    const stopped = await broker.stop();
    expect(stopped).toBe(1);
    const ackedWhileDown = size('acked');
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    // Nothing can be acknowledged with the broker gone.
    expect(size('acked')).toBeLessThanOrEqual(ackedWhileDown + 1);
    const restartedAt = Date.now();
    await broker.start();

    // Both sides carry on: more sends acknowledged, and handled, after the restart.
    await waitFor(() => size('acked') >= ackedWhileDown + 300, { timeoutMs: 90_000, message: 'the producer to recover' });
    const recoveredMs = Date.now() - restartedAt;
    await supervisor.scale('sequencer', 0, 'producer');
    const acked = Object.keys(supervisor.store.get('acked')!.value as object);
    await waitFor(() => acked.every((id) => (supervisor.store.get('handled')!.value as Record<string, number>)[id] !== undefined), {
      timeoutMs: 90_000,
      message: `every acknowledged message handled (${acked.length})`,
    });
    const handled = supervisor.store.get('handled')!.value as Record<string, number>;
    const duplicates = Object.values(handled).filter((n) => n > 1).length;
    const service = supervisor.status().services[0]!;
    process.stderr.write(
      `broker restart: ${acked.length} acknowledged, all handled; ${duplicates} handled more than once; back ${recoveredMs} ms after the restart; worker restarts ${service.restarts}\n`,
    );
    expect(service.health).toBe('healthy');
  });
});
