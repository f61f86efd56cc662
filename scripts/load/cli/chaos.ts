import { join, resolve } from 'node:path';
import { WORKER_LIMITS } from '../../../src/config/schema.js';
import { UsageError } from '../../../src/errors.js';
import { jarCacheDir, parseBrokerList } from '../../../src/kafka/broker.js';
import { clusterStatus, startLocalCluster, stopLocalCluster } from '../../../src/kafka/local/cluster.js';
import { runChaos, type ChaosResult, type Fault } from '../chaos.js';
import { createProgressView } from '../progress.js';
import { resolveTarget } from '../target.js';
import { stateHome } from '../../../src/paths.js';
import { createLogger, levelFromEnv } from '../../../src/log.js';
import { intFlag, parseFlags, writeJson, type Command, type CommandContext } from '../../../src/cli/args.js';

const HELP = `Usage: npm run chaos -- [flags]      (or: node dist/scripts/chaos.js [flags])

Kills brokers under traffic and counts what was lost. Runs request/reply traffic through a real
service (Jarvis, as npm run load does) on a local three-node Apache Kafka cluster (replication 3,
min.insync.replicas 2), while brokers are killed with SIGKILL and started again on a schedule,
one at a time, each back in sync before the next dies; --worker-kills also terminates worker
threads. Reports acknowledged, answered, lost (must be 0), duplicates and, for every fault, how
long the traffic took to recover. Exits 1 if any acknowledged request was lost.
Loopback only: the cluster is this machine's.

Flags:
  --duration S        seconds of traffic (default 300)
  --rate R            requests per second (default 50: what a local 3-node cluster on 2 cores keeps
                      up with, so that recovery shows rather than a backlog; see docs/reliability.md)
  --broker-kills N    brokers killed over the run, one at a time (default 5; 0: none)
  --down S            seconds a killed broker stays down before it is started again (default 10)
  --worker-kills N    worker threads terminated over the run (default 0)
  --workers W         consumer workers of the service (default 2)
  --partitions P      partitions of the run's topics (default 6)
  --size BYTES        bytes of each request (default 256)
  --dir D             the local cluster's folder (default .wharf/chaos/cluster); started if it is not
                      running, and stopped at the end if this command started it
  --keep-cluster      leave a cluster this command started running
  --json              one JSON object on stdout (progress goes to stderr)
  -h, --help          this help

KAFKA_BROKERS, when set, must name the nodes of that local cluster: chaos signals the brokers'
processes, which it can only do for a cluster started from this machine (npm run kafka -- start
--brokers 3 --dir D).
`;

const FLAGS = {
  duration: { type: 'string' },
  rate: { type: 'string' },
  'broker-kills': { type: 'string' },
  down: { type: 'string' },
  'worker-kills': { type: 'string' },
  workers: { type: 'string' },
  partitions: { type: 'string' },
  size: { type: 'string' },
  dir: { type: 'string' },
  'keep-cluster': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ChaosFlags {
  durationS: number;
  rate: number;
  brokerKills: number;
  downS: number;
  workerKills: number;
  workers: number;
  partitions: number;
  size: number;
  dir: string;
  keepCluster: boolean;
  json: boolean;
}

export function parseChaosFlags(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ChaosFlags | 'help' {
  const { values } = parseFlags(argv, FLAGS, 'npm run chaos');
  if (values.help) return 'help';
  const durationS = intFlag(values.duration, 'duration', { min: 10, max: 86_400, fallback: 300 });
  const brokerKills = intFlag(values['broker-kills'], 'broker-kills', { min: 0, max: 1_000, fallback: 5 });
  const downS = intFlag(values.down, 'down', { min: 0, max: 3_600, fallback: 10 });
  if (brokerKills > 0 && durationS / brokerKills < downS + 10) {
    throw new UsageError(
      `--broker-kills ${brokerKills} in --duration ${durationS} leaves ${Math.floor(durationS / brokerKills)} s per kill, too little for --down ${downS} plus a restart: ` +
        `give at least ${downS + 10} s per kill (a longer --duration, fewer kills, or a shorter --down).`,
    );
  }
  return {
    durationS,
    rate: intFlag(values.rate, 'rate', { min: 1, max: 100_000, fallback: 50 }),
    brokerKills,
    downS,
    workerKills: intFlag(values['worker-kills'], 'worker-kills', { min: 0, max: 1_000, fallback: 0 }),
    workers: intFlag(values.workers, 'workers', { ...WORKER_LIMITS.consumer, fallback: 2 }),
    partitions: intFlag(values.partitions, 'partitions', { min: 1, max: 1_000, fallback: 6 }),
    size: intFlag(values.size, 'size', { min: 128, max: 1_000_000, fallback: 256 }),
    dir: values.dir === undefined ? join(stateHome(env, cwd), 'chaos', 'cluster') : resolve(cwd, values.dir),
    keepCluster: values['keep-cluster'] ?? false,
    json: values.json ?? false,
  };
}

const n = (v: number) => v.toLocaleString('en-US');
const s = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v.toFixed(1)} s`);

function describeFault(f: Fault): string {
  if (f.kind === 'worker')
    return `  ${s(f.atS).padStart(8)}  worker ${f.target || '–'} terminated${f.skipped ? ` (skipped: ${f.skipped})` : ''}; recovered after ${s(f.recoveryS)}`;
  return `  ${s(f.atS).padStart(8)}  broker ${f.target} killed; restarted at ${s(f.restartedAtS)}, serving at ${s(f.servingAtS)}; traffic recovered after ${s(f.recoveryS)} (longest stall ${s(f.stallS)})`;
}

export function formatChaos(r: ChaosResult): string {
  const { summary: sum, load } = r;
  return [
    `wharf chaos: ${load.service}, ${load.workers} workers, ${load.partitions} partitions, ${n(load.rate ?? 0)}/s for ${load.durationLimitS} s; ${sum.brokerKills} broker kills, ${sum.workerKills} worker kills`,
    `  acknowledged ${n(sum.acknowledged)}  answered ${n(sum.answered)}  lost ${n(sum.lost)}  duplicates ${n(sum.duplicates)}  dead-lettered ${n(load.deadLettered)}  send errors ${n(load.sendErrors)}`,
    `  recovery after a broker kill: median ${s(sum.recoveryS.median)}, max ${s(sum.recoveryS.max)}`,
    `  latency ms  p50 ${load.latencyMs.p50?.toFixed(1) ?? '–'}  p99 ${load.latencyMs.p99?.toFixed(1) ?? '–'}  max ${load.latencyMs.max?.toFixed(1) ?? '–'}`,
    '  faults:',
    ...r.faults.map(describeFault),
    `  machine: ${load.machine.cpus} CPUs, Node ${load.machine.node}, load average ${load.machine.loadavg.join(' ')}`,
    '',
  ].join('\n');
}

async function run({ argv, env, stdout, stderr, logger }: CommandContext): Promise<number> {
  const flags = parseChaosFlags(argv, env);
  if (flags === 'help') {
    stdout.write(HELP);
    return 0;
  }
  const cacheDir = jarCacheDir(env);
  let status = clusterStatus(flags.dir);
  const startedHere = !status || status.running.length === 0;
  const fromEnv = parseBrokerList(env.KAFKA_BROKERS);
  if (fromEnv && (!status || fromEnv.join(',') !== status.bootstrap)) {
    throw new UsageError(
      `KAFKA_BROKERS is ${fromEnv.join(',')}, not the local cluster in ${flags.dir}: chaos kills brokers by signalling their processes, ` +
        `so it runs on a local cluster (npm run kafka -- start --brokers 3 --dir D, then --dir D), or without KAFKA_BROKERS.`,
    );
  }
  if (status && status.nodes.length !== 3) {
    throw new UsageError(
      `The cluster in ${flags.dir} has ${status.nodes.length} node(s); chaos needs three (one can die while two keep min.insync.replicas). Use another --dir.`,
    );
  }
  if (startedHere)
    status = (await startLocalCluster({ dir: flags.dir, cacheDir, brokers: 3, port: status?.nodes[0]?.port ?? 0, logger, env })).status;
  const brokers = status!.bootstrap.split(',');

  const progressStream = flags.json ? stderr : stdout;
  const view = createProgressView({ stream: progressStream, tty: Boolean((progressStream as NodeJS.WriteStream).isTTY) });
  const serviceLogger = createLogger({ fd: 2, level: flags.json ? 'silent' : levelFromEnv(env, 'error') });
  let result: ChaosResult;
  try {
    result = await runChaos({
      brokers,
      clusterDir: flags.dir,
      jarCacheDir: cacheDir,
      target: resolveTarget('jarvis'),
      workers: flags.workers,
      partitions: flags.partitions,
      durationS: flags.durationS,
      rate: flags.rate,
      // Open loop at the rate, but bounded: a cluster that cannot keep up builds no backlog it would take minutes to drain.
      maxInFlight: Math.max(1_000, flags.rate * 20),
      size: flags.size,
      keys: 100,
      brokerKills: flags.brokerKills,
      downS: flags.downS,
      workerKills: flags.workerKills,
      // A broker's death can hold replies back for many seconds: wait for them before counting any lost.
      settleTimeoutMs: 60_000,
      logger,
      serviceLogger,
      onTick: (p) => view.tick(p),
      onFault: (f) =>
        view.note(f.kind === 'broker' ? `broker ${f.target} killed at ${s(f.atS)}` : `worker ${f.target} terminated at ${s(f.atS)}`),
    });
  } finally {
    view.done();
    if (startedHere && !flags.keepCluster) await stopLocalCluster({ dir: flags.dir, logger });
  }
  if (flags.json) writeJson(stdout, result);
  else stdout.write(formatChaos(result));
  if (result.summary.lost > 0) {
    stderr.write(
      `wharf chaos: lost ${n(result.summary.lost)} of ${n(result.summary.acknowledged)} acknowledged requests (first ids: ${result.load.lostSample.join(', ')}); topics kept: ${result.load.topics.requests}, ${result.load.topics.replies}.\n`,
    );
    return 1;
  }
  return 0;
}

export const chaosCommand: Command = {
  name: 'chaos',
  summary: 'kill and restart brokers (and workers) under traffic; report lost (must be 0), duplicates, recovery',
  run,
};
