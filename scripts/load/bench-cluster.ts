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
 * three ways in one run — a persisted store as a supervisor alone had it before deployments
 * (its changelog written without transactions), the owner of a deployment serving its own call,
 * and a standby routing the call to the owner over the admin protocol — and failover: an owner
 * process killed with SIGKILL, until the standby serves the state, with the session timeout used.
 */
export type ClusterMeasure =
  'store.awaited' | 'store.pipelined' | 'owner.awaited' | 'owner.pipelined' | 'routed.awaited' | 'routed.pipelined';

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
  ratios: { routedVsOwner: { awaited: number; pipelined: number }; ownerVsStore: { awaited: number; pipelined: number } };
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
  const samples = new Map<ClusterMeasure, number[]>();
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
    await standby.join({ address: '' });

    // The two members split the partitions; the counter measured is one whose partition `owner` serves.
    while (owner.served().length + standby.served().length < (owner.partitions() ?? 1)) await sleep(20);
    let counter = 'c';
    for (let i = 0; !owner.served().includes(owner.partitionOf(counter)); i++) counter = `c${i}`;
    const direct = store;
    const calls: Record<'store' | 'owner' | 'routed', Call> = {
      store: () => Promise.resolve(direct.execute('bench', 'counter', counter, 'add', [1])),
      owner: () => owner.route.call('bench', 'counter', counter, 'add', [1]),
      routed: () => standby.route.call('bench', 'counter', counter, 'add', [1]),
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
    },
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
    `  routed from a standby      awaited ${n(o['routed.awaited'])}/s   pipelined ${n(o['routed.pipelined'])}/s   (${report.ratios.routedVsOwner.awaited}× / ${report.ratios.routedVsOwner.pipelined}× the owner's)`,
    `  failover after SIGKILL: median ${report.failover.medianMs} ms over ${report.failover.kills} kills (${report.failover.samplesMs.join(', ')} ms), session timeout ${report.failover.sessionTimeoutMs} ms`,
    `  load average ${report.loadavg.join(' ')}`,
  ];
}
