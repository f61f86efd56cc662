import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jarCacheDir } from '../../src/kafka/broker.js';
import { createKafka } from '../../src/kafka/client.js';
import { readClusterState, startLocalCluster, stopLocalCluster } from '../../src/kafka/local/cluster.js';
import { readTopic } from '../../src/kafka/topic-reader.js';
import { createTopics } from '../../src/kafka/topics.js';
import { stateHome } from '../../src/paths.js';
import { SERVICE_MODULES, startSupervisor, testLogger, uniqueName, waitFor } from '../helpers.js';
import { produce } from './messaging-helpers.js';

/**
 * Pipelined sends (docs/messaging.md, Delivery) never commit past a send that is not
 * acknowledged, and keep each partition's sends in offset order. A three-node cluster of this
 * file's own: the group's coordinator and the input topic on node A, the output topic replicated
 * on A and F (min.insync.replicas 2). F is frozen with SIGSTOP for a few seconds under traffic,
 * so every send waits (acks=all needs F, and once F leaves the ISR the broker answers
 * NOT_ENOUGH_REPLICAS, which the producer retries) while commits on A go on. Committed offsets
 * are sampled meanwhile, each with the output topic's end offsets read right after; once F is
 * back, the output is read whole, and every message below a sampled commit must have its send
 * in the output below the end offset of that moment.
 */

const logger = testLogger();
const dir = join(stateHome(), 'test-brokers', uniqueName(`pipelined-${process.pid}`));
let brokers: string[] = [];
let kafka: Kafka;

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  // A frozen follower leaves the ISR after 2 s (default 30 s), so the offsets topic, replicated on
  // all three nodes with min.insync.replicas 2, takes commits again while F is frozen.
  const settings = { 'replica.lag.time.max.ms': 2_000 };
  const { status } = await startLocalCluster({ dir, cacheDir: jarCacheDir(), brokers: 3, port: 0, logger, settings });
  brokers = status.bootstrap.split(',');
  // The test's own requests give up on the frozen node quickly and go to another.
  kafka = createKafka({ brokers, logger, clientId: uniqueName('pipelined'), kafka: { requestTimeout: 2_000 } });
}, 180_000);

afterAll(async () => {
  for (const node of readClusterState(dir)?.nodes ?? []) if (node.pid) signal(node.pid, 'SIGCONT');
  await stopLocalCluster({ dir, logger, timeoutMs: 10_000 });
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

/** Java's String.hashCode: a group's coordinator leads __consumer_offsets partition |hash| % partitions. */
function javaHash(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(31, hash) + text.charCodeAt(i)) | 0;
  return hash;
}

async function coordinatorOf(admin: Admin, groupId: string): Promise<number> {
  const [offsets] = (await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] })).topics;
  const hash = javaHash(groupId);
  const partition = (hash === -2147483648 ? 0 : Math.abs(hash)) % offsets!.partitions.length;
  return offsets!.partitions.find((p) => p.partitionId === partition)!.leader;
}

async function retrying<T>(call: () => Promise<T>, tries = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= tries) throw error;
    }
  }
}

const PARTITIONS = 2;

describe('pipelined sends', () => {
  it('never commit past a send that is not acknowledged, and keep per-partition order', { timeout: 240_000 }, async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const groupId = uniqueName('pipeliner');
      // A new cluster creates its offsets topic when a group is first looked up.
      let a = -1;
      await waitFor(
        async () => {
          await admin.describeGroups([groupId]).catch(() => undefined);
          a = await coordinatorOf(admin, groupId).catch(() => -1);
          return a >= 0;
        },
        { timeoutMs: 60_000, message: "the group's coordinator" },
      );
      const nodes = readClusterState(dir)!.nodes;
      const f = nodes.find((n) => n.nodeId !== a)!;
      const input = uniqueName('pipelined-in');
      const output = uniqueName('pipelined-out');
      const on = (replicas: number[]) => Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, replicas }));
      await createTopics(admin, [
        { topic: input, replicaAssignment: on([a]) },
        { topic: output, replicaAssignment: on([a, f.nodeId]), configEntries: [{ name: 'min.insync.replicas', value: '2' }] },
      ]);

      const supervisor = await startSupervisor(
        {
          services: [
            {
              module: SERVICE_MODULES.fixture('pipeliner'),
              workers: { consumer: 1 },
              consumes: { topics: [input], groupId, commit: { intervalMs: 100 } },
              options: { target: output },
            },
          ],
          kafka: { clientId: uniqueName('wharf') },
        },
        { brokers },
      );
      const producer = kafka.producer();
      await producer.connect();
      const batch = (from: number, count: number) =>
        Array.from({ length: count }, (_, n) => ({ partition: (from + n) % PARTITIONS, value: JSON.stringify({ n: from + n }) }));
      const started = () => (supervisor.store.get('pipeliner.started')?.value ?? {}) as Record<string, number>;
      const committed = async () => {
        const [entry] = await admin.fetchOffsets({ groupId, topics: [input] });
        return new Map(entry!.partitions.map((p) => [p.partition, Number(p.offset)]));
      };
      const ends = async (topic: string) => new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));

      // Traffic flows and commits before the freeze.
      await produce(producer, input, batch(0, 200));
      await waitFor(async () => [...(await committed()).values()].reduce((s, o) => s + Math.max(o, 0), 0) >= 200, {
        timeoutMs: 60_000,
        message: 'the first 200 committed',
      });

      // Both are asked for before the freeze, so no metadata is needed while F is frozen.
      await committed();
      await ends(output);
      const samples: { committed: Map<number, number>; outputEnds: Map<number, number>; started: Record<string, number> }[] = [];
      signal(f.pid!, 'SIGSTOP');
      try {
        // A request that went to the frozen node times out (2 s); it is asked again of another.
        await retrying(() => produce(producer, input, batch(200, 200)));
        // 6 s, and at least 4 samples (a request that went to F first waits out its timeout).
        for (const start = Date.now(); Date.now() - start < 6_000 || (samples.length < 4 && Date.now() - start < 30_000);) {
          const c = await retrying(committed);
          const s = { ...started() };
          samples.push({ committed: c, outputEnds: await retrying(() => ends(output)), started: s });
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
      } finally {
        signal(f.pid!, 'SIGCONT');
      }

      await waitFor(async () => [...(await committed()).values()].reduce((s, o) => s + o, 0) >= 400, {
        timeoutMs: 120_000,
        message: 'all 400 committed after F is back',
      });
      samples.push({ committed: await committed(), outputEnds: await ends(output), started: { ...started() } });

      // Every send landed (at once, unless something was committed before its send was).
      await waitFor(async () => [...(await ends(output)).values()].reduce((s, o) => s + o, 0) >= 400, {
        timeoutMs: 60_000,
        message: 'all 400 sends in the output',
      });
      // Where each input message's send landed in the output: partition and offset, in the order read.
      const landed = new Map<number, { offset: number; source: number }[]>();
      const misplaced: string[] = [];
      await readTopic({
        kafka,
        topic: output,
        logger,
        timeoutMs: 60_000,
        visit: (partition, message) => {
          const sent = JSON.parse(message.value!.toString()) as { partition: number; offset: string };
          if (sent.partition !== partition) misplaced.push(`${sent.partition}/${sent.offset} in ${partition}`);
          landed.set(partition, [...(landed.get(partition) ?? []), { offset: Number(message.offset), source: Number(sent.offset) }]);
        },
      });

      expect(misplaced).toEqual([]);
      const violations: string[] = [];
      const orders = new Map<number, number[]>();
      for (let p = 0; p < PARTITIONS; p++) {
        const sends = (landed.get(p) ?? []).sort((x, y) => x.offset - y.offset);
        // Order: first sends of each input message, in output order, are the input offsets in order.
        const first = new Map<number, number>();
        for (const s of sends) if (!first.has(s.source)) first.set(s.source, s.offset);
        orders.set(p, [...first.keys()]);
        // Commits: every message below a sampled commit had its send in the output at that moment.
        for (const sample of samples) {
          const upTo = sample.committed.get(p)!;
          const end = sample.outputEnds.get(p)!;
          for (let source = 0; source < upTo; source++) {
            const at = first.get(source);
            if (at === undefined || at >= end)
              violations.push(`${p}/${source}: committed (up to ${upTo}), its send at ${at}, output end ${end}`);
          }
        }
      }
      expect(violations).toEqual([]);
      for (const [p, order] of orders)
        expect(order, `partition ${p}: sends in input order`).toEqual(Array.from({ length: 200 }, (_, i) => i));
      // The window did what it is for: sends waited while handlers ran on past the last commit.
      const frozen = samples.slice(0, -1);
      expect(frozen.length).toBeGreaterThanOrEqual(2);
      const ahead = frozen.some((s) => [...s.committed].some(([p, c]) => (s.started[String(p)] ?? -1) >= c + 1));
      expect(ahead, 'a handler ran past an unacknowledged message while F was frozen').toBe(true);
      await producer.disconnect();
    } finally {
      await admin.disconnect();
    }
  });
});
