/**
 * Shared-state throughput: wharf's store against a plain comlink round trip and Python's
 * multiprocessing.Manager, measured in the same run on the same machine.
 *
 *   npm run build && node dist/scripts/bench/state.js [--json] [--reps 5] [--quick] [--no-python] [--workers 1,8]
 *
 * This file is both the benchmark and its worker threads (it spawns itself). Each figure is the
 * median over --reps runs of: all workers' operations / wall time from "go" to the last "done".
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { isMainThread, MessageChannel, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import * as comlinkNode from 'comlink/dist/umd/node-adapter.js';
import { median, ratio as ratioOf } from '../load/bench-stats.js';
import { packageRoot } from '../../src/paths.js';
import { createStateClient } from '../../src/state/client.js';
import { createStateStore } from '../../src/state/store.js';
import { benchFlags, countFlag, countListFlag, HELP_FLAG, parseFlags } from './flags.js';

const COMMAND = 'node dist/scripts/bench/state.js';
const USAGE = `Usage: ${COMMAND} [--json] [--reps N] [--quick] [--no-python] [--workers LIST]

Shared-state throughput: wharf's store against a plain comlink round trip and Python's multiprocessing.Manager.
  --reps N      repetitions, interleaved; medians reported (default 5)
  --quick       fewer operations per measure
  --no-python   leave out the Python Manager
  --workers L   worker counts to measure, comma-separated (default 1,8)
  --json        one JSON object on stdout
  -h, --help    this help
`;

type Scenario = 'awaited' | 'awaitedGet' | 'pipelined' | 'counter' | 'comlinkAwaited' | 'comlinkPipelined';
interface Job {
  scenario: Scenario;
  ops: number;
}
interface BenchTarget {
  set(key: string, value: number): void;
}

const WINDOW = 1_000;
const DEFAULT_WORKER_COUNTS = '1,8';

// The adapter is CommonJS whose module.exports is the function; unwrap whichever way it arrives.
const nodeEndpoint = ((comlinkNode as { default: unknown }).default as { default?: unknown }).default ?? (comlinkNode as { default: unknown }).default;
const endpoint = (port: MessagePort) => (nodeEndpoint as (port: MessagePort) => Comlink.Endpoint)(port);

async function workerMain(): Promise<void> {
  const { statePort, comlinkPort } = workerData as { statePort: MessagePort; comlinkPort: MessagePort };
  const state = createStateClient(statePort);
  const map = state.map<number>('bench');
  const counter = state.counter('bench-hits');
  const remote = Comlink.wrap<BenchTarget>(endpoint(comlinkPort));

  const runs: Record<Scenario, (ops: number) => Promise<void>> = {
    // A posted write: it settles when it leaves, with no round trip (docs/state.md, "Posted writes").
    async awaited(ops) {
      for (let i = 0; i < ops; i++) await map.set(`k${i % 1_000}`, i);
    },
    // A round trip: the answer comes from the store.
    async awaitedGet(ops) {
      for (let i = 0; i < ops; i++) await map.get(`k${i % 1_000}`);
    },
    async pipelined(ops) {
      for (let done = 0; done < ops; done += WINDOW) {
        const window: Promise<void>[] = [];
        for (let i = done; i < done + WINDOW; i++) window.push(map.set(`k${i % 1_000}`, i));
        await Promise.all(window);
      }
    },
    async counter(ops) {
      for (let i = 0; i < ops; i++) await counter.add(1);
    },
    async comlinkAwaited(ops) {
      for (let i = 0; i < ops; i++) await remote.set(`k${i % 1_000}`, i);
    },
    async comlinkPipelined(ops) {
      for (let done = 0; done < ops; done += WINDOW) {
        const window: Promise<void>[] = [];
        for (let i = done; i < done + WINDOW; i++) window.push(remote.set(`k${i % 1_000}`, i));
        await Promise.all(window);
      }
    },
  };

  parentPort!.on('message', (job: Job | 'exit') => {
    if (job === 'exit') {
      state.close();
      comlinkPort.close();
      parentPort!.close();
      return;
    }
    // Done once the store has applied every write: a map.set may settle when it leaves (a posted
    // write, docs/state.md), and the time must include the store's work, so end on a round trip.
    void runs[job.scenario](job.ops)
      .then(() => map.size())
      .then(() => parentPort!.postMessage('done'));
  });
  parentPort!.postMessage('ready');
}

interface Options {
  workers: number[];
  json: boolean;
  reps: number;
  quick: boolean;
  python: boolean;
}

interface Pool {
  count: number;
  /** One timed run of `job` on every worker at once; operations per second, all workers together. */
  run(job: Job): Promise<number>;
  close(): Promise<void>;
}

async function startPool(count: number): Promise<Pool> {
  const store = createStateStore();
  const comlinkMap = new Map<string, number>();
  const workers: Worker[] = [];
  const waiting = new Map<Worker, () => void>();
  const next = (worker: Worker) => new Promise<void>((resolve) => waiting.set(worker, resolve));
  for (let i = 0; i < count; i++) {
    const comlink = new MessageChannel();
    Comlink.expose({ set: (key: string, value: number) => void comlinkMap.set(key, value) } satisfies BenchTarget, endpoint(comlink.port1));
    const statePort = store.connect(`bench-${i}`);
    const worker = new Worker(new URL(import.meta.url), { workerData: { statePort, comlinkPort: comlink.port2 }, transferList: [statePort, comlink.port2] });
    worker.on('message', () => waiting.get(worker)?.());
    workers.push(worker);
  }
  await Promise.all(workers.map(next));
  return {
    count,
    async run(job) {
      const done = workers.map(next);
      const started = performance.now();
      for (const worker of workers) worker.postMessage(job);
      await Promise.all(done);
      return (count * job.ops) / ((performance.now() - started) / 1_000);
    },
    async close() {
      const moved = await store.local.counter('bench-hits').get();
      for (const worker of workers) worker.postMessage('exit');
      await Promise.all(workers.map((worker) => worker.terminate()));
      store.close();
      if (moved === 0) throw new Error('the bench counter never moved: the counter runs measured nothing');
    },
  };
}

function opsFor(quick: boolean): Record<Scenario, number> {
  const scale = quick ? 0.2 : 1;
  return {
    awaited: Math.round(10_000 * scale),
    awaitedGet: Math.round(10_000 * scale),
    comlinkAwaited: Math.round(10_000 * scale),
    pipelined: Math.round((100_000 * scale) / WINDOW) * WINDOW,
    comlinkPipelined: Math.round((50_000 * scale) / WINDOW) * WINDOW,
    counter: Math.round(2_000_000 * scale),
  };
}

interface PythonResult {
  python: string;
  opsPerSec: Record<string, { dict_set: number; dict_get: number; counter: number; manager_counter: number }>;
}

function measurePython({ quick, workers }: Options): PythonResult | { error: string } {
  const script = join(packageRoot(), 'scripts/bench/python_manager.py');
  const scale = quick ? 0.2 : 1;
  const args = [script, '--json', '--reps', '1', '--workers', workers.join(','),
    '--ops-awaited', String(Math.round(10_000 * scale)), '--ops-counter', String(Math.round(400_000 * scale))];
  const result = spawnSync('python3', args, { encoding: 'utf8', timeout: 900_000 });
  if (result.error) return { error: `python3 not run: ${result.error.message}` };
  if (result.status !== 0) return { error: `python3 exited ${result.status}: ${result.stderr.trim().split('\n').at(-1)}` };
  return JSON.parse(result.stdout) as PythonResult;
}

/** The bench's ratio (three decimals); none where either side was not measured. */
const ratio = (a: number | undefined, b: number | undefined): number | null => (a && b ? ratioOf(a, b) : null);

async function main(): Promise<void> {
  const values = benchFlags(USAGE, (argv) =>
    parseFlags(argv, { json: { type: 'boolean', default: false }, reps: { type: 'string' }, quick: { type: 'boolean', default: false }, 'no-python': { type: 'boolean', default: false }, workers: { type: 'string', default: DEFAULT_WORKER_COUNTS }, ...HELP_FLAG }, COMMAND).values,
  );
  const reps = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 5 });
  const workers = countListFlag(COMMAND, values.workers!, 'workers', { min: 1, max: 64 });
  const options: Options = { workers, json: values.json!, reps, quick: values.quick!, python: !values['no-python'] };
  const say = (line: string) => options.json || process.stderr.write(`${line}\n`);

  // Reps are interleaved (each rep runs every measure once, Python included) so that load from
  // elsewhere on the machine spreads over all measures instead of skewing one of them.
  const pools = [];
  for (const count of options.workers) pools.push(await startPool(count));
  const ops = opsFor(options.quick);
  const samples: Record<string, Record<string, number[]>> = {};
  const record = (count: number | string, measure: string, value: number) => ((samples[count] ??= {})[measure] ??= []).push(value);
  let python: PythonResult | { error: string } = { error: 'skipped (--no-python)' };
  try {
    for (const pool of pools) for (const scenario of Object.keys(ops) as Scenario[]) await pool.run({ scenario, ops: Math.max(WINDOW, ops[scenario] / 10) });
    for (let rep = 1; rep <= reps; rep++) {
      say(`rep ${rep}/${reps}: wharf and comlink…`);
      for (const pool of pools) for (const scenario of Object.keys(ops) as Scenario[]) record(pool.count, scenario, await pool.run({ scenario, ops: ops[scenario] }));
      if (!options.python) continue;
      say(`rep ${rep}/${reps}: python multiprocessing.Manager…`);
      python = measurePython(options);
      if ('error' in python) {
        say(python.error);
        options.python = false;
        continue;
      }
      for (const [count, row] of Object.entries(python.opsPerSec)) for (const [measure, value] of Object.entries(row)) record(count, `python.${measure}`, value);
    }
  } finally {
    for (const pool of pools) await pool.close();
  }
  const at = (count: number, measure: string) => (samples[count]?.[measure] ? median(samples[count]![measure]!) : undefined);
  const spread = Object.fromEntries(Object.entries(samples).map(([count, row]) => [count, Object.fromEntries(Object.entries(row).map(([m, v]) => [m, [Math.round(Math.min(...v)), Math.round(Math.max(...v))]]))]));

  const rows = options.workers.flatMap((count) => {
    return [
      { workers: count, measure: 'awaited map.set (a posted write)', wharf: at(count, 'awaited'), comlink: at(count, 'comlinkAwaited'), python: at(count, 'python.dict_set') },
      { workers: count, measure: 'awaited round trip (map.get)', wharf: at(count, 'awaitedGet'), comlink: undefined, python: at(count, 'python.dict_get') },
      { workers: count, measure: `pipelined, ${WINDOW} in flight`, wharf: at(count, 'pipelined'), comlink: at(count, 'comlinkPipelined'), python: undefined },
      { workers: count, measure: 'counter add (SAB vs mp.Value+lock)', wharf: at(count, 'counter'), comlink: undefined, python: at(count, 'python.counter') },
      { workers: count, measure: 'counter add (Manager Value+Lock)', wharf: undefined, comlink: undefined, python: at(count, 'python.manager_counter') },
    ].map((row) => ({
      ...row,
      wharfVsPython: ratio(row.wharf, row.python),
      wharfVsComlink: ratio(row.wharf, row.comlink),
      wharfVsPythonAwaited: row.measure.startsWith('pipelined') ? ratio(row.wharf, at(count, 'python.dict_set')) : null,
    }));
  });

  const report = {
    node: process.version,
    python: 'python' in python ? python.python : null,
    pythonError: 'error' in python ? python.error : null,
    cpus: cpus().length,
    reps,
    quick: options.quick,
    unit: 'operations per second, all workers together, median of reps',
    rows,
    /** [min, max] over the reps, by worker count and measure. */
    spread,
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const fmt = (n: number | undefined | null) => (n === undefined || n === null ? '—' : Math.round(n).toLocaleString('en-US'));
  const fmtRatio = (n: number | null) => (n === null ? '—' : `${n}×`);
  console.log(`node ${report.node}, python ${report.python ?? report.pythonError}, ${report.cpus} cpus, median of ${reps}`);
  console.log(['workers', 'measure'.padEnd(36), 'wharf'.padStart(11), 'comlink'.padStart(9), 'python'.padStart(11), 'w/py'.padStart(8), 'w/comlink'.padStart(10)].join('  '));
  for (const row of rows) {
    console.log([String(row.workers).padStart(7), row.measure.padEnd(36), fmt(row.wharf).padStart(11), fmt(row.comlink).padStart(9), fmt(row.python).padStart(11),
      fmtRatio(row.wharfVsPython ?? row.wharfVsPythonAwaited).padStart(8), fmtRatio(row.wharfVsComlink).padStart(10)].join('  '));
  }
  console.log('pipelined w/py compares with Python\'s awaited dict set: its Manager cannot pipeline.');
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
} else {
  await workerMain();
}
