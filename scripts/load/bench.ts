import { cpus, loadavg } from 'node:os';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../src/kafka/client.js';
import type { Logger } from '../../src/log.js';
import { climbLadder, summarizeCapacity, type CapacitySide } from './bench-capacity.js';
import { measureCeiling } from './bench-ceiling.js';
import { consumeWithKafkajs, consumeWithWharf, type DrainMeasure } from './bench-consume.js';
import { runClusterBench, type ClusterBenchReport } from './bench-cluster.js';
import { runPythonClientBench, type PythonClientBenchReport } from './bench-python.js';
import { runStateBench, type StateBenchReport } from './bench-state.js';
import { interleave, ratio, sampled, type Sampled } from './bench-stats.js';
import { calibrateCpuWork } from './cpu-work.js';
import { runLoad } from './run.js';
import { resolveTarget } from './target.js';

/**
 * `npm run bench`: wharf against baselines measured in the same run on the same broker, each a
 * ratio of medians over interleaved repetitions (bench-stats.ts says why).
 */
export const SECTIONS = ['consume', 'scaling', 'pool', 'state', 'roundtrip', 'capacity', 'python', 'cluster'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchSettings {
  brokers: string[];
  quick: boolean;
  reps: number;
  sections: readonly Section[];
  /** wharf with its HTTP listener in use (`/metrics` scraped, a dashboard open), as `npm start` runs; false: `--http off`. */
  http: boolean;
  logger: Logger;
  /** The supervisors' logger (its level is their workers' level). */
  serviceLogger: Logger;
  say(line: string): void;
}

interface DrainSummary {
  msgsPerSec: Sampled;
  drainS: Sampled;
  startupS: Sampled;
}

export interface BenchReport {
  startedAt: string;
  durationS: number;
  quick: boolean;
  reps: number;
  /** Whether wharf ran with its HTTP listener in use (`--http on`, the default) or without it. */
  http?: boolean;
  machine: { cpus: number; model: string; node: string; loadavgStart: number[]; loadavgEnd: number[] };
  brokers: string[];
  consume?: {
    messages: number;
    partitions: number;
    variants: Record<string, DrainSummary>;
    /** wharf's no-op service ÷ the hand-written kafkajs service (JSON decode, handler, autoCommit). */
    wharfVsHandWritten: number | null;
    wharfVsEachMessage: number | null;
    wharfVsEachBatch: number | null;
    /** Targets: ≥ 0.9× the hand-written service, ≥ 0.7× the bare eachMessage consumer. */
    target: number;
    targetVsEachMessage: number;
  };
  scaling?: {
    messages: number;
    partitions: number;
    msPerMessage: number;
    iterations: number;
    variants: Record<string, DrainSummary>;
    vsKafkajs: Record<string, number | null>;
    /** Each wharf variant ÷ the plain-thread ceiling of as many threads as it can use (at most the cores). */
    vsCeiling: Record<string, number | null>;
    target: number;
  };
  /** The key-ordered pool (1 consumer worker, `concurrency: { mode: 'key', threads }`) on a 2-partition topic. */
  pool?: {
    messages: number;
    partitions: number;
    msPerMessage: number;
    iterations: number;
    variants: Record<string, DrainSummary>;
    vsKafkajs: Record<string, number | null>;
    vsCeiling: Record<string, number | null>;
    target: number;
  };
  state?: StateBenchReport | { error: string };
  /** `awaited` and `pipelined` with the roundtrip section, `capacity` with it or with the capacity section alone. */
  roundtrip?: { workers: number; awaited?: RoundTrip; pipelined?: RoundTrip & { inFlight: number }; capacity?: Capacity };
  /** The Python client (clients/python) vs multiprocessing.Manager; `clientVsManager` holds the ratios. */
  python?: PythonClientBenchReport | { error: string };
  /** A deployment's shared state: owner, routed and the store as before; failover (bench-cluster.ts). */
  cluster?: ClusterBenchReport | { error: string };
}

export interface RoundTrip {
  messages: number;
  wharf: { perSec: Sampled; p50: Sampled; p99: Sampled; lost: number };
  kafkajs: { perSec: Sampled; p50: Sampled; p99: Sampled; lost: number };
  /** wharf's throughput ÷ the bare responder's. */
  wharfVsKafkajs: number | null;
}

export interface Capacity {
  size: number;
  p99LimitMs: number;
  stepS: number;
  rates: number[];
  wharf: CapacitySide;
  kafkajs: CapacitySide;
  /** wharf's highest rate with p99 under the limit ÷ the bare responder's. */
  wharfVsKafkajs: number | null;
  target: number;
}

const SIZES = {
  full: {
    // 300,000: a drain of 2–3 s. At 100,000 (under 1 s) the threads' first compilations and the
    // broker's moods made a variant's reps differ by up to 40 %.
    consume: 300_000,
    scaling: 12_000,
    pool: 5_000,
    awaited: 300,
    pipelined: 5_000,
    // From 100/s: on a slow stretch of this machine a responder's p99 passed 50 ms at 250/s, and
    // a capacity of 0 gives no ratio (a full run's JSON had `roundtrip.capacity.wharfVsKafkajs`: null).
    // Steps of 1.25–1.33× where both responders' knees have been (250–1,000/s): with 100, 250,
    // 500, 1,000 a ratio could only be 0.5×, 1× or 2×.
    capacity: {
      rates: [100, 200, 300, 400, 500, 650, 800, 1_000, 1_250, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_500, 8_000],
      stepMs: 6_000,
    },
  },
  quick: {
    consume: 20_000,
    scaling: 3_000,
    pool: 1_500,
    awaited: 100,
    pipelined: 1_500,
    capacity: { rates: [100, 250, 500, 1_000, 2_000, 3_000, 4_000, 6_000], stepMs: 3_000 },
  },
};
const PARTITIONS = 12;
const IN_FLIGHT = 100;

const CEILING = { 1: 'ceiling, 1 thread', 2: 'ceiling, 2 threads' } as const;
/** The ceiling a variant using `threads` threads is held to: this machine has no more than its cores. */
const ceilingFor = (threads: number) => (Math.min(threads, cpus().length) >= 2 ? CEILING[2] : CEILING[1]);

const summarize = (runs: DrainMeasure[]): DrainSummary => ({
  msgsPerSec: sampled(runs.map((r) => r.msgsPerSec)),
  drainS: sampled(runs.map((r) => r.drainS)),
  startupS: sampled(runs.map((r) => r.startupS)),
});

/** Each variant named in `threadsOf` against the bare consumer and against the ceiling of its threads. */
function versus(
  variants: Record<string, DrainSummary>,
  bareName: string,
  threadsOf: Record<string, number>,
): { vsKafkajs: Record<string, number | null>; vsCeiling: Record<string, number | null> } {
  const rate = (name: string) => variants[name]?.msgsPerSec.median ?? NaN;
  const names = Object.keys(threadsOf);
  return {
    vsKafkajs: Object.fromEntries(names.map((k) => [k, ratio(rate(k), rate(bareName))])),
    vsCeiling: Object.fromEntries(names.map((k) => [k, ratio(rate(k), rate(ceilingFor(threadsOf[k]!)))])),
  };
}

export async function runBench(settings: BenchSettings): Promise<BenchReport> {
  const { brokers, quick, reps, sections, http, logger, serviceLogger, say } = settings;
  const sizes = quick ? SIZES.quick : SIZES.full;
  const started = Date.now();
  const report: BenchReport = {
    startedAt: new Date(started).toISOString(),
    durationS: 0,
    quick,
    reps,
    http,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, loadavgStart: loadavg(), loadavgEnd: [] },
    brokers,
  };
  const kafka: Kafka = createKafka({ brokers, logger, clientId: 'wharf-bench' });
  const admin = kafka.admin();
  await admin.connect();
  const logRun = (section: string) => (name: string, rep: number, r: DrainMeasure) =>
    say(
      `${section} ${rep < 0 ? 'warm-up (not counted)' : `rep ${rep + 1}/${reps}`} ${name}: ${r.msgsPerSec.toLocaleString('en-US')} msg/s (drained in ${r.drainS} s after a ${r.startupS} s start)`,
    );
  try {
    if (sections.includes('consume')) {
      const base = { brokers, kafka, admin, partitions: PARTITIONS, expected: sizes.consume, hashIterations: 0, logger: serviceLogger };
      say(`consume: ${sizes.consume.toLocaleString('en-US')} messages per measure, a warm-up round and ${reps} reps…`);
      const runs = await interleave(
        {
          'wharf, 1 worker': () => consumeWithWharf({ ...base, http, workers: 1 }),
          'kafkajs hand-written': () => consumeWithKafkajs({ ...base, mode: 'handWritten' }),
          'kafkajs eachMessage': () => consumeWithKafkajs({ ...base, mode: 'eachMessage' }),
          'kafkajs eachBatch': () => consumeWithKafkajs({ ...base, mode: 'eachBatch' }),
        },
        reps,
        // A run's first drains are slow: in three of four full runs wharf's first (rep 1 starts
        // with it) was its slowest, by 15–25 %. A round not counted takes part of that.
        { onRun: logRun('consume'), warmupRounds: 1 },
      );
      const variants = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarize(v)]));
      const rate = (k: string) => variants[k]!.msgsPerSec.median;
      report.consume = {
        messages: sizes.consume,
        partitions: PARTITIONS,
        variants,
        wharfVsHandWritten: ratio(rate('wharf, 1 worker'), rate('kafkajs hand-written')),
        wharfVsEachMessage: ratio(rate('wharf, 1 worker'), rate('kafkajs eachMessage')),
        wharfVsEachBatch: ratio(rate('wharf, 1 worker'), rate('kafkajs eachBatch')),
        target: 0.9,
        targetVsEachMessage: 0.7,
      };
    }

    if (sections.includes('scaling')) {
      const work = calibrateCpuWork(1);
      say(
        `scaling: ${work.iterations} SHA-256 rounds ≈ ${work.msPerCall} ms per message; ${sizes.scaling.toLocaleString('en-US')} messages per measure…`,
      );
      const base = {
        brokers,
        kafka,
        admin,
        partitions: PARTITIONS,
        expected: sizes.scaling,
        hashIterations: work.iterations,
        logger: serviceLogger,
      };
      const ceiling = (threads: number) => () => measureCeiling({ threads, messages: sizes.scaling, iterations: work.iterations });
      const runs = await interleave(
        {
          'kafkajs eachMessage': () => consumeWithKafkajs({ ...base, mode: 'eachMessage' }),
          'wharf, 1 worker': () => consumeWithWharf({ ...base, http, workers: 1 }),
          'wharf, 2 workers': () => consumeWithWharf({ ...base, http, workers: 2 }),
          'wharf, 4 workers': () => consumeWithWharf({ ...base, http, workers: 4 }),
          [CEILING[1]]: ceiling(1),
          [CEILING[2]]: ceiling(2),
        },
        reps,
        { onRun: logRun('scaling') },
      );
      const variants = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarize(v)]));
      const threadsOf = { 'wharf, 1 worker': 1, 'wharf, 2 workers': 2, 'wharf, 4 workers': 4 } as Record<string, number>;
      report.scaling = {
        messages: sizes.scaling,
        partitions: PARTITIONS,
        msPerMessage: work.msPerCall,
        iterations: work.iterations,
        variants,
        ...versus(variants, 'kafkajs eachMessage', threadsOf),
        target: 0.9,
      };
    }

    if (sections.includes('pool')) {
      const work = calibrateCpuWork(1);
      const partitions = 2;
      say(
        `pool: ${work.iterations} SHA-256 rounds ≈ ${work.msPerCall} ms per message; ${sizes.pool.toLocaleString('en-US')} messages on ${partitions} partitions per measure…`,
      );
      const base = { brokers, kafka, admin, partitions, expected: sizes.pool, hashIterations: work.iterations, logger: serviceLogger };
      const pool = (threads: number) => () => consumeWithWharf({ ...base, http, workers: 1, concurrency: { mode: 'key', threads } });
      const ceiling = (threads: number) => () => measureCeiling({ threads, messages: sizes.pool, iterations: work.iterations });
      const runs = await interleave(
        {
          'kafkajs eachMessage': () => consumeWithKafkajs({ ...base, mode: 'eachMessage' }),
          'wharf, 2 workers': () => consumeWithWharf({ ...base, http, workers: 2 }),
          'pool, 1 thread': pool(1),
          'pool, 2 threads': pool(2),
          [CEILING[1]]: ceiling(1),
          [CEILING[2]]: ceiling(2),
        },
        reps,
        { onRun: logRun('pool') },
      );
      const variants = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarize(v)]));
      const threadsOf = { 'wharf, 2 workers': 2, 'pool, 1 thread': 1, 'pool, 2 threads': 2 } as Record<string, number>;
      report.pool = {
        messages: sizes.pool,
        partitions,
        msPerMessage: work.msPerCall,
        iterations: work.iterations,
        variants,
        ...versus(variants, 'kafkajs eachMessage', threadsOf),
        target: 0.9,
      };
    }

    if (sections.includes('state')) {
      say('state: scripts/bench/state.ts (wharf store vs comlink vs Python multiprocessing.Manager)…');
      report.state = await runStateBench({ reps, quick }).catch((error: Error) => ({ error: error.message }));
    }

    const target = resolveTarget('jarvis');
    if (sections.includes('roundtrip')) {
      const once = async (responder: 'wharf' | 'kafkajs', messages: number, maxInFlight: number) => {
        const r = await runLoad({
          brokers,
          target,
          workers: 1,
          partitions: 6,
          limit: { messages },
          rate: null,
          maxInFlight,
          size: 256,
          keys: 100,
          logger,
          serviceLogger,
          responder,
          settleTimeoutMs: 20_000,
        });
        say(
          `roundtrip ${responder} ${maxInFlight} in flight: ${r.throughput.answeredPerSec}/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, lost ${r.lost}`,
        );
        return r;
      };
      const measure = async (messages: number, maxInFlight: number): Promise<RoundTrip> => {
        const runs = await interleave(
          { wharf: () => once('wharf', messages, maxInFlight), kafkajs: () => once('kafkajs', messages, maxInFlight) },
          reps,
        );
        const side = (k: 'wharf' | 'kafkajs') => ({
          perSec: sampled(runs[k]!.map((r) => r.throughput.answeredPerSec)),
          p50: sampled(runs[k]!.map((r) => r.latencyMs.p50 ?? NaN)),
          p99: sampled(runs[k]!.map((r) => r.latencyMs.p99 ?? NaN)),
          lost: runs[k]!.reduce((sum, r) => sum + r.lost, 0),
        });
        const wharf = side('wharf');
        const kafkajs = side('kafkajs');
        return { messages, wharf, kafkajs, wharfVsKafkajs: ratio(wharf.perSec.median, kafkajs.perSec.median) };
      };
      const awaited = await measure(sizes.awaited, 1);
      const pipelined = { ...(await measure(sizes.pipelined, IN_FLIGHT)), inFlight: IN_FLIGHT };
      report.roundtrip = { workers: 1, awaited, pipelined };
    }

    if (sections.includes('roundtrip') || sections.includes('capacity')) {
      const { rates, stepMs } = sizes.capacity;
      const ladder = { brokers, target, rates, stepMs, warmupMs: 1_000, size: 1_024, p99LimitMs: 50, logger, serviceLogger, say };
      say(`capacity: 1 KB requests at ${rates.join(', ')}/s, ${stepMs / 1_000} s a step, until p99 ≥ 50 ms…`);
      const ladders = await interleave(
        { wharf: () => climbLadder(ladder, 'wharf'), kafkajs: () => climbLadder(ladder, 'kafkajs') },
        // One ladder each with --quick: a ladder is many load runs.
        quick ? 1 : reps,
      );
      const wharf = summarizeCapacity(ladders.wharf!);
      const kafkajs = summarizeCapacity(ladders.kafkajs!);
      report.roundtrip ??= { workers: 1 };
      report.roundtrip.capacity = {
        size: 1_024,
        p99LimitMs: 50,
        stepS: stepMs / 1_000,
        rates: [...rates],
        wharf,
        kafkajs,
        wharfVsKafkajs: ratio(wharf.highestRate, kafkajs.highestRate),
        target: 1.2,
      };
    }

    if (sections.includes('python')) {
      say('python: the Python client vs multiprocessing.Manager (scripts/bench/python_client.py)…');
      report.python = await runPythonClientBench({ reps, quick, logger, say }).catch((error: Error) => ({ error: error.message }));
    }
    if (sections.includes('cluster')) {
      say("cluster: a deployment's shared state, owner vs routed vs the store as before, and failover (scripts/load/bench-cluster.ts)…");
      report.cluster = await runClusterBench({ brokers, reps, quick, logger, say }).catch((error: Error) => ({ error: error.message }));
    }
  } finally {
    await admin.disconnect();
  }
  report.machine.loadavgEnd = loadavg();
  report.durationS = Math.round((Date.now() - started) / 100) / 10;
  return report;
}
