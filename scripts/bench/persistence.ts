/**
 * What persistence costs: the demo's write — `setIfAbsent(n, exchange)` on the shared map, awaited
 * as a handler awaits it — from 4 worker threads, with the map in memory only and with the map
 * persisted (each call answered once Kafka acknowledged its changelog record, acks=all), on the
 * broker that broker resolution picks (KAFKA_BROKERS, Docker, or the local one).
 *
 *   npm run build && node dist/scripts/bench/persistence.js [--json] [--reps 5] [--seconds 3]
 *
 * This file is both the benchmark and its worker threads (it spawns itself). Reps are interleaved
 * (each rep runs every measure once) and each figure is the median over the reps of all workers'
 * completed calls / the measured seconds.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { createKafka } from '../../src/kafka/client.js';
import { resolveBroker } from '../../src/kafka/broker.js';
import { median } from '../load/bench-stats.js';
import { createLogger } from '../../src/log.js';
import { createChangelog, type Changelog } from '../../src/persist/changelog.js';
import { createStateClient } from '../../src/state/client.js';
import { createStateStore, type StateStore } from '../../src/state/store.js';
import { benchFlags, countFlag, HELP_FLAG, parseFlags, usageExit } from './flags.js';

const COMMAND = 'node dist/scripts/bench/persistence.js';
const USAGE = `Usage: ${COMMAND} [--json] [--reps N] [--seconds S]

Persisted shared state: calls per second through the store with its changelog on Kafka.
  --reps N      repetitions per measure, the median reported (default 5)
  --seconds S   seconds per measure, at most 60 (default 3)
  --json        one JSON object on stdout
  -h, --help    this help
`;

const WORKERS = 4;
/** Calls each worker keeps in flight: 1 = one handler awaiting each call; 4 = four partitions at once; 64 = a pipelining worker. */
const IN_FLIGHT = [1, 4, 64];

interface Job {
  op: 'setIfAbsent' | 'counterAdd';
  inFlight: number;
  seconds: number;
  tag: string;
}

async function workerMain(): Promise<void> {
  const { port, index } = workerData as { port: MessagePort; index: number };
  const state = createStateClient(port);
  const conversation = state.map('conversation');
  const counter = state.counter('replied');
  const run = async (job: Job): Promise<void> => {
    let done = 0;
    const deadline = performance.now() + job.seconds * 1_000;
    // `inFlight` loops, each awaiting its own call before the next, as concurrent handlers do.
    await Promise.all(
      Array.from({ length: job.inFlight }, async (_, lane) => {
        for (let i = lane; performance.now() < deadline; i += job.inFlight) {
          if (job.op === 'counterAdd') await counter.add(1);
          else {
            const n = `${job.tag}-${index}-${i}`;
            await conversation.setIfAbsent(n, { n, text: `Jarvis, run a diagnostic on the arc reactor. (#${n})`, reply: 'Yes, Tony: run a diagnostic on the arc reactor — done.', answeredBy: 'jarvis/consumer/0', askedAt: Date.now(), recordedAt: Date.now() });
          }
          done++;
        }
      }),
    );
    state.close();
    parentPort!.postMessage(done);
  };
  // A failed run rejects unhandled, which ends the thread with the error: the bench reports it.
  parentPort!.on('message', (job: Job) => void run(job));
}

interface Run {
  opsPerSec: number;
  /** Calls answered per changelog write: how much group commit gathers. */
  callsPerWrite: number;
}

/** One timed run: a fresh store (persisted through `changelog`, or not), 4 workers, one job. */
async function measure(changelog: Changelog | undefined, job: Omit<Job, 'tag'>): Promise<Run> {
  let writes = 0;
  const store: StateStore = createStateStore(
    changelog && {
      persist: {
        names: ['conversation', 'replied'],
        sink: {
          write(batch) {
            writes++;
            return changelog.write(batch);
          },
        },
      },
    },
  );
  const tag = randomBytes(4).toString('hex');
  const workers = Array.from({ length: WORKERS }, (_, index) => {
    const port = store.connect(`bench-${index}`);
    return new Worker(new URL(import.meta.url), { workerData: { port, index }, transferList: [port] });
  });
  try {
    const started = performance.now();
    const counts = await Promise.all(
      workers.map((worker) => {
        const done = new Promise<number>((resolve, reject) => (worker.once('message', resolve), worker.once('error', reject)));
        worker.postMessage({ ...job, tag } satisfies Job);
        return done;
      }),
    );
    const seconds = (performance.now() - started) / 1_000;
    await store.flush();
    const total = counts.reduce((a, b) => a + b, 0);
    if (job.op === 'setIfAbsent' && store.describe().find((o) => o.name === 'conversation')?.size !== total) throw new Error('the bench lost writes: its map does not hold every call');
    return { opsPerSec: total / seconds, callsPerWrite: total / Math.max(1, writes) };
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
    store.close();
  }
}

async function main(): Promise<void> {
  const values = benchFlags(USAGE, (argv) => parseFlags(argv, { json: { type: 'boolean', default: false }, reps: { type: 'string' }, seconds: { type: 'string' }, ...HELP_FLAG }, COMMAND).values);
  const reps = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 5 });
  const seconds = Number(values.seconds ?? 3);
  if (!(seconds > 0 && seconds <= 60)) usageExit(`--seconds must be a number of seconds above 0, at most 60; got "${values.seconds}". Run \`${COMMAND} --help\`.`);
  const say = (line: string) => values.json || process.stderr.write(`${line}\n`);

  const logger = createLogger({ fd: 2, level: 'warn' });
  const broker = await resolveBroker({ logger });
  const topic = `wharf.bench.state-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const changelog = createChangelog({ kafka: createKafka({ brokers: broker.brokers, logger, clientId: 'wharf-bench' }), topic, logger });
  await changelog.open();

  const measures = [
    ...IN_FLIGHT.map((inFlight) => ({ name: `setIfAbsent, ${inFlight} in flight per worker`, op: 'setIfAbsent' as const, inFlight })),
    { name: 'counter add, 1 in flight per worker', op: 'counterAdd' as const, inFlight: 1 },
  ];
  const samples = new Map<string, Run[]>();
  try {
    for (let rep = 0; rep <= reps; rep++) {
      say(rep === 0 ? 'warm-up…' : `rep ${rep}/${reps}…`);
      for (const m of measures) {
        for (const persisted of [false, true]) {
          const run = await measure(persisted ? changelog : undefined, { op: m.op, inFlight: m.inFlight, seconds: rep === 0 ? 0.5 : seconds });
          if (rep > 0) samples.set(`${m.name}|${persisted}`, [...(samples.get(`${m.name}|${persisted}`) ?? []), run]);
        }
      }
    }
  } finally {
    await changelog.close();
    await broker.release();
  }

  const rows = measures.map((m) => {
    const memory = samples.get(`${m.name}|false`)!;
    const persisted = samples.get(`${m.name}|true`)!;
    const inMemory = median(memory.map((r) => r.opsPerSec));
    const durable = median(persisted.map((r) => r.opsPerSec));
    return {
      measure: m.name,
      memory: Math.round(inMemory),
      persisted: Math.round(durable),
      ratio: Math.round((durable / inMemory) * 1_000) / 1_000,
      callsPerWrite: Math.round(median(persisted.map((r) => r.callsPerWrite)) * 10) / 10,
      spread: { memory: [Math.round(Math.min(...memory.map((r) => r.opsPerSec))), Math.round(Math.max(...memory.map((r) => r.opsPerSec)))], persisted: [Math.round(Math.min(...persisted.map((r) => r.opsPerSec))), Math.round(Math.max(...persisted.map((r) => r.opsPerSec)))] },
    };
  });
  const report = { node: process.version, cpus: cpus().length, brokers: broker.brokers, source: broker.source, workers: WORKERS, reps, seconds, unit: 'completed calls per second, all workers together, median of reps', rows };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  console.log(`node ${report.node}, ${report.cpus} cpus, ${WORKERS} workers, broker ${broker.source} at ${broker.brokers.join(',')}, median of ${reps} × ${seconds} s`);
  console.log(['measure'.padEnd(40), 'in memory'.padStart(10), 'persisted'.padStart(10), 'ratio'.padStart(7), 'calls/write'.padStart(12)].join('  '));
  for (const row of rows) {
    console.log([row.measure.padEnd(40), row.memory.toLocaleString('en-US').padStart(10), row.persisted.toLocaleString('en-US').padStart(10), `${row.ratio}×`.padStart(7), String(row.callsPerWrite).padStart(12)].join('  '));
  }
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
} else {
  await workerMain();
}
