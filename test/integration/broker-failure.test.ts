import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { jarCacheDir } from '../../src/kafka/broker.js';
import { createKafka, producerConfig } from '../../src/kafka/client.js';
import { killNode, restartNode, startLocalCluster, stopLocalCluster } from '../../src/kafka/local/cluster.js';
import { createSender } from '../../src/kafka/sender.js';
import { readTopic } from '../../src/kafka/topic-reader.js';
import { createTopics } from '../../src/kafka/topics.js';
import { createGenerator } from '../../scripts/load/generator.js';
import { createLedger } from '../../scripts/load/ledger.js';
import { correlatedSeq } from '../../scripts/load/request.js';
import { createTimeline } from '../../scripts/load/timeline.js';
import { stateHome } from '../../src/paths.js';
import { createChangelog } from '../../src/persist/changelog.js';
import { SERVICE_MODULES, startSupervisor, testLogger, uniqueName, waitFor } from '../helpers.js';

/**
 * Nothing acknowledged is lost when a broker dies (docs/reliability.md). A three-node cluster of
 * this file's own (replication 3, min.insync.replicas 2); producers keep many sends in flight
 * while the leader of their partitions is killed with SIGKILL; then every acknowledged message is
 * looked for in the log, read back by a separate consumer. Without wharf's kafkajs patch
 * (patches/kafkajs+2.2.4.patch) sends resolve for messages that never landed, and retried
 * batches are written twice.
 */

const logger = testLogger();
const dir = join(stateHome(), 'test-brokers', uniqueName(`failover-${process.pid}`));
let brokers: string[] = [];
let kafka: Kafka;

// A dead broker is fenced after broker.session.timeout.ms (9 s by default); 3 s keeps the test short.
const FAST_FENCING = { 'broker.session.timeout.ms': 3_000, 'broker.heartbeat.interval.ms': 500 };

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const { status } = await startLocalCluster({ dir, cacheDir: jarCacheDir(), brokers: 3, port: 0, logger, settings: FAST_FENCING });
  brokers = status.bootstrap.split(',');
  kafka = createKafka({ brokers, logger, clientId: uniqueName('failover') });
}, 180_000);

afterAll(async () => {
  await stopLocalCluster({ dir, logger, timeoutMs: 10_000 });
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function withAdmin<T>(use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

async function leaderOf(topic: string, partition: number): Promise<number> {
  return withAdmin(async (admin) => {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    return metadata.topics[0]!.partitions.find((p) => p.partitionId === partition)!.leader;
  });
}

/** Java's String.hashCode: Kafka picks a group's coordinator as the leader of __consumer_offsets partition |hash| % partitions. */
function javaHash(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(31, hash) + text.charCodeAt(i)) | 0;
  return hash;
}

async function coordinatorOf(groupId: string): Promise<number> {
  const partitions = await withAdmin(
    async (admin) => (await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] })).topics[0]!.partitions.length,
  );
  const hash = javaHash(groupId);
  return leaderOf('__consumer_offsets', (hash === -2147483648 ? 0 : Math.abs(hash)) % partitions);
}

/**
 * Kills `nodeId` now; the returned function starts it again (at the latest when the test ends),
 * so the next test has three nodes. The file's last test leaves it dead: the cluster stops next.
 */
async function crash(nodeId: number, { last = false } = {}): Promise<() => Promise<void>> {
  let restarted: Promise<void> | undefined;
  const restart = () => (restarted ??= restartNode({ dir, nodeId, logger, cacheDir: jarCacheDir() }));
  if (!last) onTestFinished(restart);
  expect(await killNode({ dir, nodeId, logger }), `node ${nodeId} was running`).toBe(true);
  return restart;
}

/** Every message of a topic, read back by a consumer of its own: key or correlation id → how often it is in the log. */
async function inLog(topic: string, idOf: (key: string | null, correlation: number) => string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  await readTopic({
    kafka,
    topic,
    logger,
    timeoutMs: 60_000,
    visit: (_partition, message) => {
      const id = idOf(message.key?.toString() ?? null, correlatedSeq(message.headers?.['correlation-id'] as Buffer | undefined));
      seen.set(id, (seen.get(id) ?? 0) + 1);
    },
  });
  return seen;
}

interface Tally {
  acked: string[];
  failed: number;
}

/** Keeps `inFlight` calls of `send(id)` running until `until` resolves; records what was acknowledged. */
async function pump(send: (id: number) => Promise<unknown>, inFlight: number, until: Promise<void>): Promise<Tally> {
  const tally: Tally = { acked: [], failed: 0 };
  const running = new Set<Promise<void>>();
  let stop = false;
  void until.then(() => (stop = true));
  for (let id = 0; !stop;) {
    while (running.size < inFlight && !stop) {
      const current = id++;
      const call: Promise<void> = send(current).then(
        () => void tally.acked.push(String(current)),
        () => void tally.failed++,
      );
      running.add(call);
      void call.finally(() => running.delete(call));
    }
    await Promise.race([...running, until]);
  }
  await Promise.all(running);
  return tally;
}

function missing(acked: readonly string[], log: Map<string, number>): string[] {
  return acked.filter((id) => !log.has(id));
}

function duplicates(log: Map<string, number>): number {
  let extra = 0;
  for (const count of log.values()) extra += count - 1;
  return extra;
}

const after = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('a partition leader killed under traffic', () => {
  it(
    'loses no acknowledged send of the sender, the changelog writer or the load generator, and writes none twice',
    // 75 s on a quiet machine; a broker's restart and three topics read back take twice that at a load average of 10.
    { timeout: 300_000 },
    async () => {
      const senderTopic = uniqueName('failover-sender');
      const loadTopic = uniqueName('failover-load');
      const changelogTopic = uniqueName('failover-changelog');
      await withAdmin((admin) =>
        createTopics(admin, [
          { topic: senderTopic, numPartitions: 6 },
          { topic: loadTopic, numPartitions: 6 },
        ]),
      );
      const changelog = createChangelog({ kafka, topic: changelogTopic, logger });
      await changelog.open();
      onTestFinished(() => changelog.close());
      const sender = createSender(kafka);
      await sender.connect();
      onTestFinished(() => sender.disconnect());
      const loadProducer = kafka.producer(producerConfig());
      await loadProducer.connect();
      onTestFinished(() => loadProducer.disconnect());

      // The changelog's one partition has a leader that also leads a third of the others' partitions.
      const victim = await leaderOf(changelogTopic, 0);
      const durationMs = 9_000;
      const ledger = createLedger();
      const generator = createGenerator({
        producer: loadProducer,
        topic: loadTopic,
        replyTo: 'unused',
        size: 128,
        keys: 64,
        rate: 1_500,
        maxInFlight: null,
        limit: { durationMs },
        maxBatchBytes: 64 * 1024,
        ledger,
        timeline: createTimeline(),
        onSendError: () => undefined,
      });
      const end = after(durationMs);
      generator.start();
      const pumped = Promise.all([
        pump((id) => sender.send(senderTopic, { id }, { key: String(id) }), 400, end),
        pump((id) => changelog.write([{ key: String(id), value: String(id) }]), 20, end),
      ]);
      // Where the test is, so that a timeout says what it waited on.
      const started = Date.now();
      const phase = (what: string) => console.log(`broker failure, ${Date.now() - started} ms: ${what}`);
      await after(2_000);
      const restart = await crash(victim);
      phase(`node ${victim} killed`);
      const [sent, written] = await pumped;
      phase('the sender and the changelog writer settled every call');
      await generator.finished;
      phase('the load generator finished');
      const restarted = restart().then(() => phase(`node ${victim} restarted`));

      const generated = ledger.counts;
      // Nothing answers these requests: every acknowledged one is "unanswered".
      const generatedAcked = ledger.unanswered(Infinity).map(String);
      const [senderLog, changelogLog, loadLog] = await Promise.all([
        inLog(senderTopic, (key) => key!),
        inLog(changelogTopic, (key) => key!),
        inLog(loadTopic, (_key, seq) => String(seq)),
      ]);
      phase('the three topics read back');
      await restarted;

      const report = {
        sender: {
          acked: sent.acked.length,
          failed: sent.failed,
          missing: missing(sent.acked, senderLog).length,
          duplicates: duplicates(senderLog),
        },
        changelog: {
          acked: written.acked.length,
          failed: written.failed,
          missing: missing(written.acked, changelogLog).length,
          duplicates: duplicates(changelogLog),
        },
        load: {
          acked: generated.acked,
          failed: generated.sendErrors,
          missing: missing(generatedAcked, loadLog).length,
          duplicates: duplicates(loadLog),
        },
      };
      logger.info({ report, victim }, 'broker failure: producers');
      // Traffic flowed around the kill (how much depends on the machine: these only say it was not
      // nothing), and the sends that were under way then were not given up.
      expect(report.sender.acked).toBeGreaterThan(100);
      expect(report.changelog.acked).toBeGreaterThan(5);
      expect(report.load.acked).toBeGreaterThan(100);
      expect(report).toEqual({
        sender: { ...report.sender, failed: 0, missing: 0, duplicates: 0 },
        changelog: { ...report.changelog, failed: 0, missing: 0, duplicates: 0 },
        load: { ...report.load, failed: 0, missing: 0, duplicates: 0 },
      });
    },
  );

  it("commits no offset past an unhandled message when the group's coordinator dies", { timeout: 150_000 }, async () => {
    const topic = uniqueName('failover-in');
    const groupId = uniqueName('failover-group');
    await withAdmin((admin) => createTopics(admin, [{ topic, numPartitions: 6 }]));
    const handledFile = join(dir, `${groupId}.handled`);
    await startSupervisor(
      {
        services: [
          {
            module: SERVICE_MODULES.fixture('recorder'),
            workers: { consumer: 2 },
            consumes: { topics: [topic], groupId },
            options: { file: handledFile },
          },
        ],
      },
      { brokers },
    );
    const handled = (): Set<string> =>
      new Set(existsSync(handledFile) ? readFileSync(handledFile, 'utf8').split('\n').filter(Boolean) : []);

    // Every sample of the group's committed offsets must be covered by what was handled before it.
    const violations: string[] = [];
    let samples = 0;
    const sampler = kafka.admin();
    await sampler.connect();
    onTestFinished(() => sampler.disconnect());
    const check = async () => {
      // Offsets first, then what was handled: a commit made before the fetch answered was of
      // messages handled before it, so the later read includes them (the other order reports
      // messages handled and committed while the fetch was under way).
      const offsets = await sampler.fetchOffsets({ groupId, topics: [topic] }).catch(() => undefined);
      if (!offsets) return;
      const seen = handled();
      samples++;
      for (const { partition, offset } of offsets[0]!.partitions) {
        for (let o = 0; o < Number(offset); o++)
          if (!seen.has(`${topic}/${partition}/${o}`)) violations.push(`${partition}/${o} committed (${offset}) before it was handled`);
      }
    };

    const sender = createSender(kafka);
    await sender.connect();
    onTestFinished(() => sender.disconnect());
    const victim = await coordinatorOf(groupId);
    const end = after(10_000);
    let stopSampling = false;
    const sampling = (async () => {
      while (!stopSampling) {
        await check();
        await after(250);
      }
    })();
    const produced = pump((id) => sender.send(topic, { id }, { key: String(id) }), 50, end);
    await after(3_000);
    await crash(victim, { last: true });
    const { acked, failed } = await produced;
    expect(failed).toBe(0);

    // Right after the kill a partition may still be electing its leader: ask until all answer.
    const high = await waitFor(
      () =>
        withAdmin(async (admin) =>
          (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, high: Number(p.high) })),
        ).catch(() => undefined),
      { timeoutMs: 60_000, intervalMs: 500, message: `the end offsets of ${topic}` },
    );
    const total = high.reduce((sum, p) => sum + p.high, 0);
    expect(total).toBeGreaterThanOrEqual(acked.length);
    await waitFor(
      async () => {
        const offsets = await sampler.fetchOffsets({ groupId, topics: [topic] }).catch(() => undefined);
        return (
          offsets !== undefined &&
          offsets[0]!.partitions.every((p) => Number(p.offset) === high.find((h) => h.partition === p.partition)!.high)
        );
      },
      { timeoutMs: 60_000, message: 'the group to commit every message' },
    );
    stopSampling = true;
    await sampling;
    await check();

    const seen = handled();
    const unhandled = high.flatMap(({ partition, high: h }) =>
      Array.from({ length: h }, (_, o) => `${topic}/${partition}/${o}`).filter((id) => !seen.has(id)),
    );
    const lines = readFileSync(handledFile, 'utf8').split('\n').filter(Boolean).length;
    logger.info({ produced: total, handled: seen.size, redelivered: lines - seen.size, samples, victim }, 'broker failure: consumer');
    expect(samples).toBeGreaterThan(10);
    expect(unhandled).toEqual([]);
    expect(violations).toEqual([]);
  });
});
