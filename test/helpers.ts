import { inject, onTestFinished } from 'vitest';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startWharf, type Wharf } from '../src/app/start.js';
import { parseConfig } from '../src/config/load.js';
import { createKafka } from '../src/kafka/client.js';
import { createTopics } from '../src/kafka/topics.js';
import { createChangelog, openChangelogTopic, readChangelog } from '../src/persist/changelog.js';
import { createChangelogFold, createNameMatcher } from '../src/state/changelog-records.js';
import type { ObjectSnapshot } from '../src/state/types.js';
import { createLogger, type Logger } from '../src/log.js';
import { compiled } from '../src/paths.js';
import type { Supervisor } from '../src/supervisor/supervisor.js';
import { runAdmin } from './admin-cli.js';
import { uniqueName, waitFor } from './wait.js';

export { uniqueName, waitFor };

/** The run's broker, resolved once by test/global-setup.ts. */
export function testBrokers(): string[] {
  return inject('brokers').split(',');
}

export function testLogger(): Logger {
  return createLogger({ fd: 2, level: (process.env.WHARF_LOG_LEVEL as 'info') ?? 'warn' });
}

type Client = Admin | Producer | Consumer;

/**
 * kafkajs clients for one test, connected, and always disconnected when the test ends (pass or
 * fail), so no test leaks sockets or group members into the next.
 */
export function kafkaForTest(logger = testLogger()) {
  const kafka = createKafka({ brokers: testBrokers(), logger, clientId: uniqueName('test') });
  const clients: Client[] = [];
  onTestFinished(async () => {
    await Promise.all(clients.map((client) => client.disconnect().catch(() => undefined)));
  });
  async function connected<C extends Client>(client: C): Promise<C> {
    clients.push(client);
    await client.connect();
    return client;
  }
  return {
    kafka,
    admin: () => connected(kafka.admin()),
    producer: (config?: Parameters<typeof kafka.producer>[0]) => connected(kafka.producer(config)),
    consumer: (config: Parameters<typeof kafka.consumer>[0]) => connected(kafka.consumer(config)),
  };
}

/** Creates a topic and waits until every partition is served (src/kafka/topics.ts). */
export async function createTopic(admin: Admin, topic: string, numPartitions = 1, replicationFactor?: number): Promise<string> {
  await createTopics(admin, [{ topic, numPartitions, ...(replicationFactor ? { replicationFactor } : {}) }]);
  return topic;
}

/** The compiled demo and test services, as a config names them. */
export const SERVICE_MODULES = {
  jarvis: compiled('workers/demo/jarvis.js'),
  tony: compiled('workers/demo/tony.js'),
  fixture: (name: string) => resolve(__dirname, 'fixtures', 'services', `${name}.mjs`),
};

/**
 * wharf for one test, started through `startWharf` as `npm start` starts it, on the run's broker
 * (or `brokers`), with fast failure detection; with `admin`, an admin socket in a folder of its
 * own (`WHARF_HOME` for `npm run admin`). Always stopped when the test ends, and the test fails
 * if any of its worker threads outlived that.
 */
export async function startWharfForTest(
  raw: Record<string, unknown>,
  { brokers = testBrokers(), admin = false }: { brokers?: string[]; admin?: boolean } = {},
): Promise<Wharf> {
  const config = parseConfig(
    {
      ...raw,
      supervisor: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 3_000, drainTimeoutMs: 15_000, ...(raw.supervisor as object) },
      kafka: { sessionTimeoutMs: 6_000, ...(raw.kafka as object) },
    },
    'test',
    process.cwd(),
  );
  const logger = testLogger();
  const home = admin ? mkdtempSync(join(tmpdir(), 'wharf-test-')) : undefined;
  let wharf: Wharf;
  try {
    wharf = await startWharf({
      config,
      brokers,
      logger,
      env: {},
      admin: home ? { dir: home } : false,
      // A free port each: tests run side by side, and 9464 may be a developer's own supervisor.
      http: { host: '127.0.0.1', port: 0 },
      print: (line) => logger.debug(line),
    });
  } catch (error) {
    if (home) rmSync(home, { recursive: true, force: true });
    throw error;
  }
  onTestFinished(async () => {
    await wharf.stop();
    if (home) rmSync(home, { recursive: true, force: true });
    const alive = wharf.supervisor.status().workers.filter((w) => w.state !== 'stopped' || w.threadId !== null);
    if (alive.length > 0) throw new Error(`test leaked worker threads: ${alive.map((w) => `${w.workerId} (${w.state})`).join(', ')}`);
  });
  return wharf;
}

/** The supervisor of `startWharfForTest`. */
export async function startSupervisor(raw: Record<string, unknown>, options: { brokers?: string[] } = {}): Promise<Supervisor> {
  return (await startWharfForTest(raw, options)).supervisor;
}

/**
 * Crashes one consumer worker of a fixture service that crashes on `{crash: true}` while the
 * shared value "fault" is "throw" (metered, parker): arms the fault, sends the message to both
 * partitions of `topic`, and resolves with the worker that crashed.
 */
export async function crashOneWorker(wharf: Wharf, producer: Producer, topic: string): Promise<string> {
  const crashed = wharf.supervisor.events.once('worker:crashed');
  await wharf.store.local.value('fault').set('throw');
  await producer.send({
    topic,
    acks: -1,
    messages: [0, 1].map((partition) => ({ partition, value: JSON.stringify({ crash: true }) })),
  });
  return (await crashed).workerId;
}

/** `npm run admin -- …args`, run in this process against the supervisor whose WHARF_HOME is `home`. */
export function runAdminIn(home: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runAdmin(args, { WHARF_HOME: home });
}

/**
 * What a deployment's changelog holds, every partition, read back as new owners would (committed
 * transactions only): the persisted objects `persist` names, as a snapshot.
 */
export async function deploymentState(topic: string, persist: readonly string[] = ['*']): Promise<Record<string, ObjectSnapshot>> {
  const kafka = createKafka({ brokers: testBrokers(), logger: testLogger() });
  const partitions = await openChangelogTopic(kafka, topic, testLogger(), 12);
  const markers = Array.from({ length: partitions }, (_, partition) =>
    createChangelog({ kafka, topic, logger: testLogger(), partition, partitions, topicReady: true }),
  );
  try {
    await Promise.all(markers.map((m) => m.open()));
    const ends = new Map(await Promise.all(markers.map(async (m) => [m.partition, await m.mark()] as const)));
    const folds = markers.map(() => createChangelogFold(createNameMatcher(persist)));
    await readChangelog({ kafka, topic, ends, apply: (partition, key, value, where) => folds[partition]!.add(key, value, where) });
    return Object.assign({}, ...folds.map((fold) => fold.snapshot())) as Record<string, ObjectSnapshot>;
  } finally {
    await Promise.all(markers.map((m) => m.close()));
  }
}
