import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { deadLetterTopic } from '../../src/kafka/dead-letter.js';
import { compiled } from '../../src/paths.js';
import { openStatePersistence, type PersistSettings, type StatePersistence } from '../../src/persist/open.js';
import type { StateStore } from '../../src/state/store.js';
import { createTopic, deploymentState, kafkaForTest, SERVICE_MODULES, testBrokers, testLogger, uniqueName, waitFor } from '../helpers.js';

/**
 * Persisted shared state against the run's real broker: what workers wrote comes back from the
 * changelog topic, exactly, and only for the objects that are persisted; and the demo's
 * conversation survives `kill -9` of `npm start` with every acknowledged exchange.
 */
const PERSISTED = ['conversation', 'events', 'tony.*', 'mood', 'profile', 'replied'];

beforeAll(() => {
  if (!existsSync(compiled('src/state/client.js'))) throw new Error('dist/ is missing: run `npm run build` before the tests.');
});

function settings(topic: string): PersistSettings {
  return { persist: PERSISTED, topic, lingerMs: 0, partitions: 1 };
}

/** Opened for one test, and always closed (flushed, disconnected) when it ends. */
async function open(topic: string): Promise<StatePersistence> {
  const persistence = await openStatePersistence({
    settings: settings(topic),
    brokers: testBrokers(),
    logger: testLogger(),
    clientId: uniqueName('persist'),
  });
  onTestFinished(async () => {
    await persistence.close(10_000).catch(() => undefined);
    persistence.store.close();
  });
  return persistence;
}

/** Runs `workers` worker threads of test/fixtures/persist-worker.mjs to the end. */
async function runWorkers(store: StateStore, workers: number, count: number): Promise<void> {
  const threads = Array.from({ length: workers }, (_, index) => {
    const port = store.connect(uniqueName(`writer${index}`));
    return new Worker(new URL('../fixtures/persist-worker.mjs', import.meta.url), {
      workerData: { port, index, count },
      transferList: [port],
    });
  });
  onTestFinished(async () => void (await Promise.all(threads.map((t) => t.terminate()))));
  await Promise.all(
    threads.map(
      (thread, index) =>
        new Promise<void>((resolve, reject) => {
          thread.on('message', (m: { done?: boolean; error?: { message: string } }) =>
            m.done ? resolve() : reject(new Error(`worker ${index}: ${m.error?.message}`)),
          );
          thread.on('error', reject);
          thread.on('exit', (code) => reject(new Error(`worker ${index} exited (${code}) before it finished`)));
        }),
    ),
  );
}

function persistedPart(snapshot: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(snapshot).filter(([name]) => !['scratch', 'hits'].includes(name)));
}

describe('shared state persisted in a compacted topic', () => {
  it('restores exactly what worker threads wrote, and only the persisted objects', { timeout: 120_000 }, async () => {
    const topic = uniqueName('wharf.state');
    const first = await open(topic);
    expect(first.restored.records, 'a new topic restores nothing').toBe(0);
    await runWorkers(first.store, 4, 100);

    const written = first.store.snapshot();
    // The workers' writes all landed (a broken store would lose or double some).
    expect(Object.keys(written.conversation!.value as object)).toHaveLength(4 * 100 - 4 * 9);
    expect(written.replied).toEqual({ kind: 'counter', value: 400 });
    expect(written['tony.asked']).toEqual({ kind: 'counter', value: 800 });
    expect((written.events!.value as unknown[]).length).toBe(400);
    expect(written.mood!.value).toMatchObject({ updates: 400 });
    expect(written.hits).toEqual({ kind: 'counter', value: 400 });
    await first.close();

    const second = await open(topic);
    expect(second.store.snapshot()).toEqual(persistedPart(written));
    expect(second.store.get('scratch'), 'not persisted: not restored').toBeUndefined();
    expect(second.store.get('hits')).toBeUndefined();
    expect(second.restored.objects).toMatchObject({ conversation: 364, events: 400, replied: 1 });

    // Changes after a restore, including clearing what was restored, come back too.
    const { local } = second.store;
    await local.map('conversation').clear();
    await local.map('conversation').set('after', { n: 'after' });
    await local.list('events').append('one more');
    await local.counter('replied').add(-400);
    const changed = second.store.snapshot();
    await second.close();
    const third = await open(topic);
    expect(third.store.snapshot()).toEqual(changed);
    expect(third.store.get('conversation')).toEqual({ kind: 'map', value: { after: { n: 'after' } } });
  });

  it('creates a missing changelog as a compacted topic with one partition', async () => {
    const topic = uniqueName('wharf.state');
    await open(topic);
    const admin = await kafkaForTest().admin();
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    expect(metadata?.partitions).toHaveLength(1);
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name: topic, configNames: ['cleanup.policy'] }],
    });
    expect(described.resources[0]?.configEntries[0]?.configValue).toBe('compact');
  });

  it('refuses a changelog topic with more than one partition, before any state is served', async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('wharf.state'), 3);
    await expect(openStatePersistence({ settings: settings(topic), brokers: testBrokers(), logger: testLogger() })).rejects.toMatchObject({
      code: 'ERR_STATE_CHANGELOG',
      message: `State changelog ${topic}: has 3 partitions; a supervisor's own changelog needs exactly one (its order is the order of changes). Use another topic, or recreate this one with one partition.`,
    });
  });
});

// ─── npm start, kill -9, npm start ──────────────────────────────────────────────────────────────

const dir = mkdtempSync(join(tmpdir(), 'wharf-persist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const home = join(dir, '.wharf');

/** `npm start` as users run it: the built CLI, a config file, the run's broker, this folder. */
interface Started {
  child: ChildProcess;
  output: () => string;
  exited: () => Promise<number | null>;
  /** Resolves at 'supervisor ready'; fails with what it printed if it exits or takes too long first. */
  ready: () => Promise<void>;
}

function start(config: object, env: Record<string, string>): Started {
  const file = join(dir, `${uniqueName('config')}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [compiled('src/cli.js'), 'start', '--config', file], {
    cwd: dir,
    env: { ...process.env, ...env, KAFKA_BROKERS: testBrokers().join(','), WHARF_LOG_LEVEL: 'info', WHARF_HOME: home },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  let gone = false;
  void exit.then(() => (gone = true));
  onTestFinished(() => void child.kill('SIGKILL'));
  return {
    child,
    output: () => output,
    exited: () =>
      Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`npm start did not exit; it printed:\n${output.slice(-3_000)}`)), 40_000),
        ),
      ]),
    ready: async () => {
      await waitFor(() => output.includes('supervisor ready') || gone, { timeoutMs: 90_000, message: 'the supervisor to be ready' }).catch(
        () => undefined,
      );
      if (!output.includes('supervisor ready'))
        throw new Error(`npm start ${gone ? 'exited' : 'was not ready in 90 s'}; it printed:\n${output.slice(-3_000)}`);
    },
  };
}

/** `npm run admin -- state conversation --json` from the same folder, no other flags: one JSON object. */
async function adminConversation(): Promise<Record<string, { n: number; text: string; reply: string; recordedAt: number }>> {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [compiled('src/cli.js'), 'admin', 'state', 'conversation', '--json'],
    {
      cwd: dir,
      env: { ...process.env, WHARF_HOME: home },
    },
  );
  expect(stderr).toBe('');
  expect(stdout.endsWith('}\n') && stdout.indexOf('\n') === stdout.length - 1, `one JSON object on one line: ${stdout.slice(0, 200)}`).toBe(
    true,
  );
  const entry = JSON.parse(stdout) as { kind: string; value: Record<string, never> };
  expect(entry.kind).toBe('map');
  return entry.value;
}

interface Read {
  partition: number;
  offset: number;
  n: number;
}

/** Every message of a topic up to its current end, with the `n` of the question or answer it carries. */
async function readTopic(k: ReturnType<typeof kafkaForTest>, topic: string): Promise<Read[]> {
  const ends = await (await k.admin()).fetchTopicOffsets(topic);
  const want = new Map(ends.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high)]));
  const out: Read[] = [];
  if (want.size === 0) return out;
  const consumer = await k.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 });
  const done = new Set<number>();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const offset = Number(message.offset);
      if (offset < want.get(partition)!) out.push({ partition, offset, n: (JSON.parse(message.value!.toString()) as { n: number }).n });
      if (offset + 1 >= want.get(partition)!) done.add(partition);
    },
  });
  await waitFor(() => done.size === want.size, { timeoutMs: 30_000, message: `the whole of ${topic}` });
  await consumer.disconnect();
  return out;
}

/** `npm run admin -- snapshot --json`: every object, as the running supervisor holds it. */
async function adminSnapshot(): Promise<Record<string, { kind: string; value: unknown }>> {
  const { stdout } = await promisify(execFile)(process.execPath, [compiled('src/cli.js'), 'admin', 'snapshot', '--json'], {
    cwd: dir,
    env: { ...process.env, WHARF_HOME: home },
  });
  return (JSON.parse(stdout) as { objects: Record<string, { kind: string; value: unknown }> }).objects;
}

/** Waits until `group` has committed up to the end of every partition of `topic`: all it fetched is handled. */
async function caughtUp(admin: Awaited<ReturnType<ReturnType<typeof kafkaForTest>['admin']>>, group: string, topic: string): Promise<void> {
  await waitFor(
    async () => {
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
      const offsets = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions;
      return offsets.every((p) => p.offset === ends.get(p.partition));
    },
    { timeoutMs: 60_000, intervalMs: 300, message: `${group} to catch up with ${topic}` },
  );
}

const numbers = (keys: Iterable<string>) => [...keys].map(Number).sort((a, b) => a - b);

describe('npm start with persisted state, killed with kill -9', () => {
  it(
    'restores every acknowledged exchange, and what a handler acknowledged before its offset was committed',
    { timeout: 300_000 },
    async () => {
      const k = kafkaForTest();
      const admin = await k.admin();
      const requests = await createTopic(admin, uniqueName('requests'), 3);
      // Two services consume `requests`: the supervisor would ask to create its dead-letter topic twice.
      await createTopic(admin, deadLetterTopic(requests));
      const [jarvisGroup, ledgerGroup, topic] = [uniqueName('jarvis'), uniqueName('ledger'), uniqueName('wharf.state')];
      // The demo's objects and the ledger's, as the config's `state.persist` will declare them (the environment until then).
      const env = { WHARF_STATE_PERSIST: 'conversation,tony.asked,sent,replied,duplicates,ledger*', WHARF_STATE_TOPIC: topic };
      const config = (producers: number) => ({
        services: [
          { module: SERVICE_MODULES.jarvis, workers: { consumer: 2 }, consumes: { topics: [requests], groupId: jarvisGroup } },
          { module: SERVICE_MODULES.tony, workers: { producer: producers }, rate: 50, options: { requests } },
          { module: SERVICE_MODULES.fixture('ledger'), workers: { consumer: 1 }, consumes: { topics: [requests], groupId: ledgerGroup } },
        ],
        supervisor: { drainTimeoutMs: 20_000 },
        // Tony's reply topic is named after the client id: a unique one keeps other tests' replies out.
        kafka: { sessionTimeoutMs: 6_000, clientId: uniqueName('persist') },
      });

      // Run 1: Tony asks up to 50 questions a second; kill -9 in the middle of it.
      const first = start(config(1), env);
      await first.ready();
      const before = await waitFor(
        async () => {
          const conversation = await adminConversation();
          return Object.keys(conversation).length >= 100 && conversation;
        },
        { timeoutMs: 60_000, intervalMs: 300, message: '100 exchanges recorded' },
      );
      const highestSeen = Math.max(...numbers(Object.keys(before)));
      // The ledger's witness needs some committed offsets first (its runner commits on an interval).
      await waitFor(
        async () => {
          const offsets = (await admin.fetchOffsets({ groupId: ledgerGroup, topics: [requests] }))[0]!.partitions;
          return offsets.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0) >= 50;
        },
        { timeoutMs: 30_000, intervalMs: 200, message: 'the ledger to commit 50 offsets' },
      );
      first.child.kill('SIGKILL');
      await first.exited();

      // The changelog as the next start will restore it (every partition, folded the same way, with the same code).
      const restored = await deploymentState(topic, env.WHARF_STATE_PERSIST.split(','));
      const conversation = restored.conversation!.value as Record<string, unknown>;
      const ledger = restored.ledger!.value as Record<string, unknown>;
      const counter = (name: string) => (restored[name]?.value ?? 0) as number;

      // "Acknowledged" means: the call resolved in the worker, so the program went on to act on it.
      // The store resolves it only once Kafka acknowledged the changelog record; what the program
      // did next, outside the changelog, is the witness that the acknowledgement happened.
      const asked = await readTopic(k, requests);
      const questions = new Set(asked.map((r) => String(r.n)));
      // 1. Tony's ticks run one at a time: question n+1 reached Kafka only after tick n's
      //    `setIfAbsent(n)` (and `replied.add`) resolved. So exchange n was acknowledged.
      const acknowledgedExchanges = numbers(questions)
        .filter((n) => n > 1)
        .map((n) => String(n - 1));
      expect(acknowledgedExchanges.length, 'Tony had moved past 50 answers before the kill').toBeGreaterThanOrEqual(50);
      expect(
        acknowledgedExchanges.filter((n) => !(n in conversation)),
        'acknowledged exchanges missing after kill -9',
      ).toEqual([]);
      // The admin read showed exchanges up to highestSeen in memory: all before it were acknowledged
      // (the last may have been in flight, unacknowledged, and is then rightly not restored).
      for (let n = 1; n < highestSeen; n++) expect(conversation, `exchange ${n}`).toHaveProperty(String(n));
      // 2. The ledger's handler returns after `setIfAbsent` resolved, and only then can its offset be
      //    committed: every question below its group's committed offsets is an acknowledged entry.
      const committed = new Map(
        (await admin.fetchOffsets({ groupId: ledgerGroup, topics: [requests] }))[0]!.partitions.map((p) => [p.partition, Number(p.offset)]),
      );
      const acknowledgedEntries = asked.filter((r) => r.offset < (committed.get(r.partition) ?? -1)).map((r) => String(r.n));
      expect(acknowledgedEntries.length, 'the ledger had committed offsets before the kill').toBeGreaterThanOrEqual(50);
      expect(
        acknowledgedEntries.filter((n) => !(n in ledger)),
        'committed ledger entries missing after kill -9',
      ).toEqual([]);
      // Persisted counters are as exact as the map: numbering never goes back, and at most the one
      // tick that was cut short is between asked, sent and replied.
      expect(counter('tony.asked')).toBeGreaterThanOrEqual(Math.max(...numbers(questions)));
      expect(counter('tony.asked') - counter('sent')).toBeGreaterThanOrEqual(0);
      expect(counter('tony.asked') - counter('sent')).toBeLessThanOrEqual(1);
      expect(
        counter('sent') - counter('replied'),
        'replied + the one answer in flight account for every question sent',
      ).toBeGreaterThanOrEqual(0);
      expect(counter('sent') - counter('replied')).toBeLessThanOrEqual(1);
      expect(Object.keys(conversation).length - counter('replied')).toBeGreaterThanOrEqual(0);
      expect(Object.keys(conversation).length - counter('replied')).toBeLessThanOrEqual(1);
      // Ledger entries recorded but not yet counted when the kill came: at most one handler per partition.
      const cutShort = Object.keys(ledger).length - counter('ledger.recorded');
      expect(cutShort).toBeGreaterThanOrEqual(0);
      expect(cutShort).toBeLessThanOrEqual(3);

      // Run 2, without Tony's producer: nothing asks, the ledger catches up with what was in flight.
      const second = start(config(0), env);
      await second.ready();
      const restoreLine = second
        .output()
        .split('\n')
        .find((line) => line.includes(`"msg":"shared state restored from ${topic}"`));
      expect(JSON.parse(restoreLine ?? '{}').objects, 'what the supervisor restored before its workers started').toMatchObject({
        conversation: Object.keys(conversation).length,
        ledger: Object.keys(ledger).length,
      });
      await waitFor(
        async () => {
          const now = (await adminSnapshot()).ledger?.value as Record<string, unknown> | undefined;
          return now && [...questions].every((n) => n in now);
        },
        { timeoutMs: 90_000, intervalMs: 500, message: 'every question Kafka accepted to be in the ledger' },
      );
      await caughtUp(admin, jarvisGroup, requests);
      await caughtUp(admin, ledgerGroup, requests);
      const final = await adminSnapshot();
      expect(await adminConversation()).toEqual(conversation);
      second.child.kill('SIGTERM');
      expect(await second.exited(), second.output().slice(-2_000)).toBe(0);

      // The demo's state is back exactly as the changelog held it; nothing in run 2 touches it.
      expect(final.conversation!.value).toEqual(conversation);
      for (const name of ['tony.asked', 'sent', 'replied', 'duplicates']) expect(final[name]?.value ?? 0, name).toBe(counter(name));
      // At least once, end to end: every question Kafka accepted is in the ledger, once; restored entries unchanged.
      const finalLedger = final.ledger!.value as Record<string, unknown>;
      expect(new Set(Object.keys(finalLedger))).toEqual(questions);
      for (const [n, entry] of Object.entries(ledger)) expect(finalLedger[n], `ledger entry ${n}`).toEqual(entry);
      expect((final['ledger.recorded']!.value as number) + cutShort, 'every question counted once, or recorded just before the kill').toBe(
        questions.size,
      );
      // The counter exists only once a redelivery happened; a run that committed everything before the kill has none.
      expect((final['ledger.duplicates']?.value ?? 0) as number).toBeGreaterThanOrEqual(counter('ledger.duplicates') + cutShort);
    },
  );
});
