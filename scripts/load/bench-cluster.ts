import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from '../../src/admin/server.js';
import { adminStateApi } from '../../src/admin/state.js';
import { createDeployment, type Deployment } from '../../src/cluster/deployment.js';
import { createKafka } from '../../src/kafka/client.js';
import type { Logger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { createChangelog } from '../../src/persist/changelog.js';
import { createStateStore, type StateStore } from '../../src/state/store.js';
import { median } from './bench-stats.js';
import { standInSupervisor } from './stand-in-supervisor.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A deployment's shared state (docs/cluster.md): a persisted counter add, awaited and pipelined,
 * four ways in one run — a persisted store as a supervisor alone had it before deployments
 * (its changelog written without transactions), the owner of the counter's partition serving its
 * own call, the other member routing the call to it over the admin protocol, and one member's calls
 * spread over counters in every partition (half of them served by the other member: partitions
 * write in parallel), and the same spread calls in a deployment of one with the default partitions
 * and with one (`state.partitions: 1`) — and failover: a member process killed with SIGKILL, until the survivor
 * serves every partition, with the session timeout used.
 */
export type ClusterMeasure = `${'store' | 'owner' | 'routed' | 'spread' | 'lone' | 'lone1'}.${'awaited' | 'pipelined'}`;

export interface ClusterBenchReport {
  reps: number;
  quick: boolean;
  seconds: number;
  /** Calls in flight in the pipelined measures. */
  window: number;
  unit: string;
  opsPerSec: Partial<Record<ClusterMeasure, number>>;
  spread: Partial<Record<ClusterMeasure, [number, number]>>;
  /** Routed ÷ owner (a call from another member vs the owner's own), and owner ÷ store (what a deployment of one costs). */
  ratios: {
    routedVsOwner: { awaited: number; pipelined: number };
    ownerVsStore: { awaited: number; pipelined: number };
    /** Spread over every partition ÷ one counter's owner, pipelined: what P partitions writing in parallel buy. */
    spreadVsOwner: { pipelined: number };
    /** A deployment of one, calls spread over every partition: the default partitions ÷ one partition. */
    loneVsOnePartition: { awaited: number; pipelined: number };
  };
  /** The changelog's partitions in the deployment measured. */
  partitions: number;
  failover: { sessionTimeoutMs: number; kills: number; medianMs: number; samplesMs: number[] };
  loadavg: string[];
}

export interface ClusterBenchOptions {
  brokers: readonly string[];
  reps: number;
  quick: boolean;
  logger: Logger;
  say?(line: string): void;
  /** Owner kills for the failover measure (default 3; 2 with quick). */
  kills?: number;
  sessionTimeoutMs?: number;
}

const WINDOW = 64;
type Call = () => Promise<unknown>;

/** Completed calls per second over `seconds`, `inFlight` loops each awaiting its call. */
async function rate(call: Call, inFlight: number, seconds: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + seconds * 1_000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        await call();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1_000);
}

function standInApi(deployment: Deployment, store: StateStore) {
  return { state: adminStateApi(store), ...standInSupervisor(), extra: deployment.adminMethods() };
}

/** A member in a process of its own (scripts/bench/cluster-member.ts), to be killed with SIGKILL. */
function spawnMember(brokers: readonly string[], name: string, sessionTimeoutMs: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [compiled('scripts/bench/cluster-member.js'), brokers.join(','), name, String(sessionTimeoutMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('serving')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the member process exited (${code}) before serving`)));
  });
}

export async function runClusterBench({
  brokers,
  reps,
  quick,
  logger,
  say = () => undefined,
  kills = quick ? 2 : 3,
  sessionTimeoutMs = 6_000,
}: ClusterBenchOptions): Promise<ClusterBenchReport> {
  const seconds = quick ? 1 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-cluster-'));
  const name = `wharf.bench.cluster-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const kafka = createKafka({ brokers, logger, clientId: 'wharf-bench' });
  const members: Deployment[] = [];
  let server: AdminServer | undefined;
  let otherServer: AdminServer | undefined;
  const samples = new Map<ClusterMeasure, number[]>();
  let partitions = 0;
  // The store as a supervisor alone had it: its changelog written without transactions.
  const plainTopic = `${name}.plain`;
  const plain = createChangelog({ kafka, topic: plainTopic, logger });
  let store: StateStore | undefined;
  try {
    await plain.open();
    store = createStateStore({ logger, persist: { names: ['*'], sink: plain } });
    const owner = createDeployment({ name, topic: name, persist: ['*'], brokers, logger, sessionTimeoutMs });
    members.push(owner);
    const front = createStateStore({ logger, shared: owner.route });
    server = await startAdminServer({ api: standInApi(owner, front), dir, logger, env: {} });
    await owner.join({ address: server.address, keyFile: server.keyFile });
    const standby = createDeployment({ name, topic: name, persist: ['*'], brokers, logger, sessionTimeoutMs });
    members.push(standby);
    // The other member serves half the partitions: calls routed to it come in on its own socket.
    otherServer = await startAdminServer({
      api: standInApi(standby, createStateStore({ logger, shared: standby.route })),
      dir: join(dir, 'other'),
      logger,
      env: {},
    });
    await standby.join({ address: otherServer.address, keyFile: otherServer.keyFile });

    // The two members split the partitions; the counter measured is one whose partition `owner` serves.
    partitions = owner.partitions() ?? 1;
    while (owner.served().length + standby.served().length < partitions) await sleep(20);
    let counter = 'c';
    for (let i = 0; !owner.served().includes(owner.partitionOf(counter)); i++) counter = `c${i}`;
    // One counter per partition.
    const spreadOver = new Map<number, string>();
    for (let i = 0; spreadOver.size < partitions; i++) {
      if (!spreadOver.has(owner.partitionOf(`s${i}`))) spreadOver.set(owner.partitionOf(`s${i}`), `s${i}`);
    }
    const spreadNames = [...spreadOver.values()];
    // Deployments of one: the default partitions, and one partition (every write of a tick in one transaction).
    const lone = createDeployment({ name: `${name}.lone`, topic: `${name}.lone`, persist: ['*'], brokers, logger, sessionTimeoutMs });
    members.push(lone);
    await lone.join({ address: '' });
    const lone1 = createDeployment({
      name: `${name}.lone1`,
      topic: `${name}.lone1`,
      partitions: 1,
      persist: ['*'],
      brokers,
      logger,
      sessionTimeoutMs,
    });
    members.push(lone1);
    await lone1.join({ address: '' });
    const spreading = (member: Deployment) => {
      let at = 0;
      return () => member.route.call('bench', 'counter', spreadNames[at++ % spreadNames.length]!, 'add', [1]);
    };
    const direct = store;
    const calls: Record<'store' | 'owner' | 'routed' | 'spread' | 'lone' | 'lone1', Call> = {
      store: () => Promise.resolve(direct.execute('bench', 'counter', counter, 'add', [1])),
      owner: () => owner.route.call('bench', 'counter', counter, 'add', [1]),
      routed: () => standby.route.call('bench', 'counter', counter, 'add', [1]),
      spread: spreading(owner),
      lone: spreading(lone),
      lone1: spreading(lone1),
    };
    for (let rep = 0; rep <= reps; rep++) {
      say(rep === 0 ? 'cluster: warm-up…' : `cluster: rep ${rep}/${reps}…`);
      for (const [way, call] of Object.entries(calls) as [keyof typeof calls, Call][]) {
        for (const [shape, inFlight] of [
          ['awaited', 1],
          ['pipelined', WINDOW],
        ] as const) {
          const measured = await rate(call, inFlight, rep === 0 ? 0.3 : seconds);
          const key = `${way}.${shape}` as ClusterMeasure;
          if (rep > 0) samples.set(key, [...(samples.get(key) ?? []), measured]);
        }
      }
    }
    for (const member of members.splice(0)) await member.close();
  } finally {
    for (const member of members) await member.close().catch(() => undefined);
    await server?.close();
    await otherServer?.close();
    store?.close();
    await plain.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }

  const failovers: number[] = [];
  for (let kill = 1; kill <= kills; kill++) {
    say(`cluster: failover ${kill}/${kills} (owner killed with SIGKILL, session timeout ${sessionTimeoutMs} ms)…`);
    const round = `${name}-failover-${kill}`;
    const child = await spawnMember(brokers, round, sessionTimeoutMs);
    const standby = createDeployment({ name: round, topic: round, persist: ['*'], brokers, logger, sessionTimeoutMs });
    try {
      await standby.join({ address: '' });
      child.kill('SIGKILL');
      const killed = performance.now();
      // Every partition served again: all of them by the survivor.
      while (standby.served().length < (standby.partitions() ?? 1)) await sleep(20);
      failovers.push(Math.round(performance.now() - killed));
    } finally {
      child.kill('SIGKILL');
      await standby.close().catch(() => undefined);
    }
  }

  const med = (key: ClusterMeasure) => Math.round(median(samples.get(key) ?? [0]));
  const opsPerSec = Object.fromEntries([...samples.keys()].map((key) => [key, med(key)])) as ClusterBenchReport['opsPerSec'];
  const spread = Object.fromEntries(
    [...samples].map(([key, values]) => [key, [Math.round(Math.min(...values)), Math.round(Math.max(...values))]]),
  ) as ClusterBenchReport['spread'];
  const ratio = (a: ClusterMeasure, b: ClusterMeasure) => Math.round((med(a) / Math.max(1, med(b))) * 100) / 100;
  return {
    reps,
    quick,
    seconds,
    window: WINDOW,
    unit: 'persisted counter adds per second, median of reps',
    opsPerSec,
    spread,
    ratios: {
      routedVsOwner: { awaited: ratio('routed.awaited', 'owner.awaited'), pipelined: ratio('routed.pipelined', 'owner.pipelined') },
      ownerVsStore: { awaited: ratio('owner.awaited', 'store.awaited'), pipelined: ratio('owner.pipelined', 'store.pipelined') },
      spreadVsOwner: { pipelined: ratio('spread.pipelined', 'owner.pipelined') },
      loneVsOnePartition: { awaited: ratio('lone.awaited', 'lone1.awaited'), pipelined: ratio('lone.pipelined', 'lone1.pipelined') },
    },
    partitions,
    failover: { sessionTimeoutMs, kills, medianMs: Math.round(median(failovers)), samplesMs: failovers },
    loadavg: loadavg().map((n) => n.toFixed(2)),
  };
}

/** The report as a few lines for people. */
export function formatClusterBench(report: ClusterBenchReport): string[] {
  const o = report.opsPerSec;
  const n = (v?: number) => (v ?? 0).toLocaleString('en-US').padStart(8);
  return [
    `cluster (persisted counter add, median of ${report.reps} × ${report.seconds} s; pipelined = ${report.window} in flight):`,
    `  store before deployments   awaited ${n(o['store.awaited'])}/s   pipelined ${n(o['store.pipelined'])}/s`,
    `  owner, its own call        awaited ${n(o['owner.awaited'])}/s   pipelined ${n(o['owner.pipelined'])}/s   (${report.ratios.ownerVsStore.awaited}× / ${report.ratios.ownerVsStore.pipelined}× the store)`,
    `  routed from the other one  awaited ${n(o['routed.awaited'])}/s   pipelined ${n(o['routed.pipelined'])}/s   (${report.ratios.routedVsOwner.awaited}× / ${report.ratios.routedVsOwner.pipelined}× the owner's)`,
    `  spread over ${String(report.partitions).padStart(2)} partitions, 2 members  awaited ${n(o['spread.awaited'])}/s   pipelined ${n(o['spread.pipelined'])}/s   (${report.ratios.spreadVsOwner.pipelined}× the owner's pipelined)`,
    `  the same, a deployment of one  awaited ${n(o['lone.awaited'])}/s   pipelined ${n(o['lone.pipelined'])}/s   (${report.ratios.loneVsOnePartition.awaited}× / ${report.ratios.loneVsOnePartition.pipelined}× with state.partitions 1)`,
    `  the same, state.partitions 1   awaited ${n(o['lone1.awaited'])}/s   pipelined ${n(o['lone1.pipelined'])}/s`,
    `  failover after SIGKILL: median ${report.failover.medianMs} ms over ${report.failover.kills} kills (${report.failover.samplesMs.join(', ')} ms), session timeout ${report.failover.sessionTimeoutMs} ms`,
    `  load average ${report.loadavg.join(' ')}`,
  ];
}
