import type { Admin } from 'kafkajs';
import { createKafka } from '../../src/kafka/client.js';
import { killNode, readClusterState, restartNode } from '../../src/kafka/local/cluster.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { runLoad, type LoadResult, type LoadSettings } from './run.js';
import type { TimelinePoint } from './timeline.js';

/**
 * `npm run chaos`: a load run (requests through a real service, every one accounted for by the
 * ledger) while brokers of a local cluster are killed with SIGKILL and started again on a
 * schedule, and optionally worker threads are killed between them. What it reports is what the
 * load run counts — acknowledged, answered, lost, duplicates — plus, per fault, how long the
 * traffic took to recover.
 */
export interface ChaosSettings extends Omit<LoadSettings, 'limit' | 'rate' | 'onStart'> {
  /** The local cluster's folder (its cluster.json names the nodes and their pids). */
  clusterDir: string;
  jarCacheDir: string;
  durationS: number;
  rate: number;
  brokerKills: number;
  /** How long a killed broker stays down before it is started again. */
  downS: number;
  workerKills: number;
  onFault?(fault: Fault): void;
}

export interface Fault {
  kind: 'broker' | 'worker';
  /** The broker's node id, or the worker's id. */
  target: string;
  /** Seconds from the start of traffic. */
  atS: number;
  /** Brokers: when it was started again, and when the cluster listed it as serving. */
  restartedAtS?: number;
  servingAtS?: number;
  /** From the fault to the first second whose replies reached 90% of the rate again (null: never, within the run). */
  recoveryS?: number | null;
  /** The longest run of seconds with no reply at all, from the fault until recovery. */
  stallS?: number;
  skipped?: string;
}

export interface ChaosResult {
  load: LoadResult;
  faults: Fault[];
  summary: {
    acknowledged: number;
    answered: number;
    lost: number;
    duplicates: number;
    brokerKills: number;
    workerKills: number;
    recoveryS: { median: number | null; max: number | null };
  };
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no listener behind. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

const round = (n: number) => Math.round(n * 10) / 10;

/** Partitions of `topics` whose in-sync replicas are fewer than their replicas. */
async function underReplicated(admin: Admin, topics: string[]): Promise<number> {
  const metadata = await admin.fetchTopicMetadata({ topics });
  return metadata.topics.flatMap((t) => t.partitions).filter((p) => p.isr.length < p.replicas.length || p.leader < 0).length;
}

/** The node that leads most partitions of `topic`: killing it moves the most traffic. */
async function busiestLeader(admin: Admin, topic: string, alive: number[]): Promise<number> {
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  const counts = new Map(alive.map((id) => [id, 0]));
  for (const p of metadata.topics[0]?.partitions ?? []) if (counts.has(p.leader)) counts.set(p.leader, counts.get(p.leader)! + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
}

/** Recovery after a fault at `atS`, read from the run's one-second timeline. */
export function recoveryAfter(points: readonly TimelinePoint[], atS: number, rate: number): { recoveryS: number | null; stallS: number } {
  let stall = 0;
  let longest = 0;
  let previous = 0;
  for (const point of points) {
    const width = point.t - previous;
    previous = point.t;
    if (point.t <= atS) continue;
    if (point.answered === 0) longest = Math.max(longest, (stall += width));
    else stall = 0;
    if (point.answered >= 0.9 * rate * width) return { recoveryS: round(point.t - atS), stallS: round(longest) };
  }
  return { recoveryS: null, stallS: round(longest) };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function runChaos(settings: ChaosSettings): Promise<ChaosResult> {
  const { clusterDir, durationS, rate, brokerKills, downS, workerKills, logger } = settings;
  const log = logger.child({ component: 'chaos' });
  const nodes = readClusterState(clusterDir)?.nodes.map((n) => n.nodeId) ?? [];
  const faults: Fault[] = [];
  const stop = new AbortController();
  let begun = 0;
  const now = () => (performance.now() - begun) / 1_000;
  let schedule: Promise<void> = Promise.resolve();

  const admin = createKafka({ brokers: settings.brokers, logger: log.child({}, { level: 'silent' }), clientId: 'wharf-chaos' }).admin();
  await admin.connect();

  async function killBroker(at: number, topics: string[]): Promise<void> {
    await sleep(Math.max(0, (at - now()) * 1_000), stop.signal);
    if (stop.signal.aborted) return;
    // A fair fault: the previous broker is back in every ISR before the next one dies.
    while (!stop.signal.aborted && (await underReplicated(admin, topics).catch(() => 1)) > 0) await sleep(500, stop.signal);
    if (stop.signal.aborted) return;
    const nodeId = await busiestLeader(admin, topics[0]!, nodes);
    const fault: Fault = { kind: 'broker', target: String(nodeId), atS: round(now()) };
    await killNode({ dir: clusterDir, nodeId, logger: log });
    log.info({ nodeId, atS: fault.atS }, `killed broker ${nodeId} (SIGKILL)`);
    settings.onFault?.(fault);
    await sleep(downS * 1_000, stop.signal);
    fault.restartedAtS = round(now());
    await restartNode({ dir: clusterDir, nodeId, logger: log, cacheDir: settings.jarCacheDir });
    fault.servingAtS = round(now());
    log.info({ nodeId, atS: fault.servingAtS }, `broker ${nodeId} is serving again`);
    faults.push(fault);
  }

  async function killWorker(at: number, supervisor: Supervisor): Promise<void> {
    await sleep(Math.max(0, (at - now()) * 1_000), stop.signal);
    if (stop.signal.aborted) return;
    const ready = supervisor.status().workers.filter((w) => w.state === 'ready' && w.role === 'consumer');
    const victim = ready[Math.floor(Math.random() * ready.length)];
    const fault: Fault = { kind: 'worker', target: victim?.workerId ?? '', atS: round(now()) };
    if (!victim) fault.skipped = 'no ready consumer worker';
    else await supervisor.kill(victim.workerId);
    log.info({ workerId: fault.target, atS: fault.atS }, 'killed a worker thread');
    settings.onFault?.(fault);
    faults.push(fault);
  }

  try {
    const load = await runLoad({
      ...settings,
      limit: { durationMs: durationS * 1_000 },
      onStart: ({ topics, supervisor }) => {
        begun = performance.now();
        const period = durationS / Math.max(1, brokerKills);
        schedule = (async () => {
          const workerFaults: Promise<void>[] = [];
          if (supervisor) {
            const gap = durationS / (workerKills + 1);
            for (let i = 1; i <= workerKills; i++) workerFaults.push(killWorker(i * gap, supervisor));
          }
          // Brokers one at a time: each is killed, restarted and caught up before the next.
          for (let i = 0; i < brokerKills; i++) await killBroker(Math.min(5, period / 4) + i * period, [topics.requests, topics.replies]);
          await Promise.all(workerFaults);
        })().catch((error: unknown) => log.error({ err: String(error) }, 'the fault schedule failed'));
      },
    });
    stop.abort();
    await schedule;
    for (const fault of faults) Object.assign(fault, recoveryAfter(load.timeline, fault.atS, rate));
    faults.sort((a, b) => a.atS - b.atS);
    const recoveries = faults.filter((f) => f.kind === 'broker' && typeof f.recoveryS === 'number').map((f) => f.recoveryS as number);
    return {
      load,
      faults,
      summary: {
        acknowledged: load.acked,
        answered: load.answered,
        lost: load.lost,
        duplicates: load.duplicates,
        brokerKills: faults.filter((f) => f.kind === 'broker').length,
        workerKills: faults.filter((f) => f.kind === 'worker' && !f.skipped).length,
        recoveryS: { median: median(recoveries), max: recoveries.length ? Math.max(...recoveries) : null },
      },
    };
  } finally {
    stop.abort();
    await schedule;
    await admin.disconnect().catch(() => undefined);
  }
}
