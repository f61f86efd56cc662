/**
 * How a pool thread's `ctx.send` should reach Kafka: its own producer (what wharf does), or a
 * relay through the consumer worker's producer. 4 threads each make `--sends` awaited sends of
 * a small message; reported per mode: sends/s for all threads, latency p50/p99, and how busy the
 * owner thread's event loop was (the consumer worker, which must also fetch and dispatch).
 * Modes are interleaved over `--reps`; threads are set up and warmed (20 sends) before the clock.
 *
 *   npm run build && node dist/scripts/bench/pool-sends.js [--sends 400] [--reps 3] [--json]
 */
import { loadavg } from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import { resolveBroker } from '../../src/kafka/broker.js';
import { createKafka } from '../../src/kafka/client.js';
import { createSender } from '../../src/kafka/sender.js';
import { createTopics } from '../../src/kafka/topics.js';
import { createLogger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { benchFlags, countFlag, HELP_FLAG, parseFlags } from './flags.js';

const COMMAND = 'node dist/scripts/bench/pool-sends.js';
const USAGE = `Usage: ${COMMAND} [--sends N] [--reps N] [--json]

A pool thread's ctx.send through its own producer against a relay through the consumer worker's.
  --sends N    awaited sends per thread (default 400)
  --reps N     repetitions, interleaved (default 3)
  --json       one JSON object on stdout
  -h, --help   this help
`;
const values = benchFlags(USAGE, (argv) => parseFlags(argv, { json: { type: 'boolean' }, sends: { type: 'string' }, reps: { type: 'string' }, ...HELP_FLAG }, COMMAND).values);
const SENDS = countFlag(COMMAND, values.sends, 'sends', { min: 1, max: 1_000_000, fallback: 400 });
const REPS = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 3 });
const THREADS = 4;
const logger = createLogger({ fd: 2, level: 'error' });
const broker = await resolveBroker({ logger });
const kafka = createKafka({ brokers: broker.brokers, logger, clientId: 'wharf-bench-sends' });
const topic = `wharf-bench-sends-${Date.now().toString(36)}`;
const admin = kafka.admin();
await admin.connect();
await createTopics(admin, [{ topic, numPartitions: 2 }]);
const owner = createSender(kafka);
await owner.connect();

// The thread: its own sender, or requests to the owner over a port; warm up, wait for "go", time each send.
const THREAD = `
import { parentPort, workerData } from 'node:worker_threads';
const { mode, topic, sends, i, port, brokers, dist } = workerData;
const { createKafka } = await import(dist + '/kafka/client.js');
const { createSender } = await import(dist + '/kafka/sender.js');
const { createLogger } = await import(dist + '/log.js');
let send;
if (mode === 'own') {
  const sender = createSender(createKafka({ brokers, logger: createLogger({ level: 'error', fd: 2 }), clientId: 'bench-thread-' + i }));
  await sender.connect();
  send = (value, key) => sender.send(topic, value, { key });
} else {
  const waiting = new Map();
  let id = 0;
  port.on('message', (done) => { waiting.get(done)(); waiting.delete(done); });
  send = (value, key) => new Promise((resolve) => { waiting.set(++id, resolve); port.postMessage({ id, value, key }); });
}
for (let n = 0; n < 20; n++) await send({ warm: n }, 'k' + n);
parentPort.postMessage('ready');
await new Promise((resolve) => parentPort.once('message', resolve));
const latencies = [];
for (let n = 0; n < sends; n++) { const t = performance.now(); await send({ n, i }, 'k' + ((n * 7 + i) % 200)); latencies.push(performance.now() - t); }
parentPort.postMessage(latencies);
process.exit(0);
`;

async function run(mode: 'own' | 'relay') {
  const threads = Array.from({ length: THREADS }, (_, i) => {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (m: { id: number; value: unknown; key: string }) => {
      void owner.send(topic, m.value, { key: m.key }).then(() => port1.postMessage(m.id));
    });
    const worker = new Worker(THREAD, { eval: true, workerData: { mode, topic, sends: SENDS, i, port: port2, brokers: broker.brokers, dist: compiled('src') }, transferList: [port2] });
    const ready = new Promise((resolve) => worker.once('message', resolve));
    const done = new Promise<number[]>((resolve, reject) => {
      worker.on('message', (m: unknown) => m !== 'ready' && resolve(m as number[]));
      worker.on('error', reject);
    }).finally(() => port1.close());
    return { worker, ready, done };
  });
  await Promise.all(threads.map((t) => t.ready));
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  for (const t of threads) t.worker.postMessage('go');
  const latencies = (await Promise.all(threads.map((t) => t.done))).flat().sort((a, b) => a - b);
  const seconds = (performance.now() - started) / 1_000;
  const at = (q: number) => Math.round(latencies[Math.floor(latencies.length * q)]! * 100) / 100;
  return { mode, sendsPerSec: Math.round(latencies.length / seconds), p50Ms: at(0.5), p99Ms: at(0.99), ownerLoopBusy: Math.round(performance.eventLoopUtilization(elu).utilization * 100) / 100, load: Math.round(loadavg()[0]! * 100) / 100 };
}

const results = [];
for (let rep = 0; rep < REPS; rep++) for (const mode of ['own', 'relay'] as const) results.push(await run(mode));
await owner.disconnect();
await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
await admin.disconnect();
await broker.release();
if (values.json) process.stdout.write(`${JSON.stringify({ threads: THREADS, sends: SENDS, results })}\n`);
else {
  console.log(`${THREADS} threads × ${SENDS} awaited sends (acks=all), interleaved`);
  console.log('mode    sends/s  p50 ms  p99 ms  owner loop busy  load');
  for (const r of results) console.log(`${r.mode.padEnd(7)} ${String(r.sendsPerSec).padStart(7)}  ${String(r.p50Ms).padStart(6)}  ${String(r.p99Ms).padStart(6)}  ${String(r.ownerLoopBusy).padStart(15)}  ${r.load}`);
}
process.exit(0);
