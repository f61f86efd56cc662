/**
 * How fast the supervisor brings workers up and replaces a crashed one, and what a worker costs.
 * Two kinds of crash: a thread terminated from outside (it cannot leave its consumer group, so the
 * replacement's join waits for the broker to expire it: the session timeout), and an uncaught
 * error in a handler (the worker leaves the group before it exits).
 * `npm run build && node dist/scripts/bench/supervisor-startup.js [--json] [--workers 1,4,16] [--kills 5]`
 */
import { parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { resolveBroker } from '../../src/kafka/broker.js';
import { createKafka } from '../../src/kafka/client.js';
import { ensureTopics } from '../../src/kafka/topics.js';
import { median } from '../load/bench-stats.js';
import { createLogger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { createSupervisor } from '../../src/supervisor/supervisor.js';
import { benchFlags, countFlag, countListFlag, HELP_FLAG, parseFlags } from './flags.js';

const COMMAND = 'node dist/scripts/bench/supervisor-startup.js';
const USAGE = `Usage: ${COMMAND} [--workers LIST] [--kills N] [--json]

How fast the supervisor brings workers up and replaces a crashed one, and what a worker costs.
  --workers LIST   consumer workers to start, comma-separated (default 1,4,16)
  --kills N        crashes measured per count (default 5)
  --json           one JSON object on stdout
  -h, --help       this help
`;
const values = benchFlags(USAGE, (argv) => parseFlags(argv, { json: { type: 'boolean' }, workers: { type: 'string', default: '1,4,16' }, kills: { type: 'string' }, ...HELP_FLAG }, COMMAND).values);
const counts = countListFlag(COMMAND, values.workers, 'workers', { min: 1, max: 64 });
const KILLS = countFlag(COMMAND, values.kills, 'kills', { min: 0, max: 1_000, fallback: 5 });
const logger = createLogger({ fd: 2, level: 'warn' });
const broker = await resolveBroker({ logger });
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

async function measure(workers: number) {
  const id = `${Date.now().toString(36)}-${workers}`;
  const topic = `bench.startup.${id}`;
  await ensureTopics(createKafka({ brokers: broker.brokers, logger }), [{ topic, numPartitions: 16 }], logger);
  const config = parseConfig(
    {
      services: [{ module: compiled('workers/demo/jarvis.js'), workers: { consumer: workers }, consumes: { topics: [topic], groupId: `bench-${id}` } }],
      supervisor: { restart: { initialDelayMs: 0, maxDelayMs: 0, maxRestarts: 100, windowMs: 60_000 } },
      kafka: { sessionTimeoutMs: 6_000 },
    },
    'bench',
    process.cwd(),
  );
  const supervisor = createSupervisor({ config, services: await loadServices(config), brokers: broker.brokers, logger });
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const began = performance.now();
  await supervisor.start();
  const readyMs = performance.now() - began;
  // Let heartbeats report heaps, then measure the process with every worker up.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const rssPerWorker = (process.memoryUsage().rss - rssBefore) / workers;
  const heaps = supervisor.status().workers.map((w) => w.heapUsedBytes ?? 0);

  const replaceMs: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const victim = `jarvis/consumer/${i % workers}`;
    const back = supervisor.events.once('worker:ready', (p) => p.workerId === victim);
    const killed = performance.now();
    await supervisor.kill(victim);
    await back;
    replaceMs.push(performance.now() - killed);
  }
  await supervisor.stop();
  supervisor.store.close();
  return { workers, readyMs: Math.round(readyMs), rssPerWorkerMiB: mib(rssPerWorker), heapPerWorkerMiB: mib(median(heaps)), replaceMsMedian: Math.round(median(replaceMs)), replaceMs: replaceMs.map(Math.round) };
}

/** Uncaught errors thrown in a worker of a 2-worker service: crash → replacement ready, each. */
async function measureThrows(): Promise<number[]> {
  const id = `${Date.now().toString(36)}-throw`;
  const topic = `bench.failover.${id}`;
  await ensureTopics(createKafka({ brokers: broker.brokers, logger }), [{ topic, numPartitions: 4 }], logger);
  const config = parseConfig(
    {
      services: [{ module: compiled('scripts/bench/faulty-service.js'), workers: { consumer: 2 }, consumes: { topics: [topic], groupId: `bench-${id}` } }],
      supervisor: { restart: { initialDelayMs: 0, maxDelayMs: 0, maxRestarts: 100, windowMs: 60_000 } },
      kafka: { sessionTimeoutMs: 6_000 },
    },
    'bench',
    process.cwd(),
  );
  const supervisor = createSupervisor({ config, services: await loadServices(config), brokers: broker.brokers, logger });
  await supervisor.start();
  const producer = createKafka({ brokers: broker.brokers, logger }).producer();
  await producer.connect();
  // A message every 20 ms on every partition, so whichever worker holds it sees the fault soon.
  const feed = setInterval(() => void producer.send({ topic, messages: [0, 1, 2, 3].map((partition) => ({ partition, value: '{}' })) }).catch(() => undefined), 20);
  const replaceMs: number[] = [];
  try {
    for (let i = 0; i < KILLS; i++) {
      const crashed = supervisor.events.once('worker:crashed', () => true);
      await supervisor.store.local.value('fault').set('throw');
      const { workerId } = await crashed;
      const at = performance.now();
      await supervisor.events.once('worker:ready', (p) => p.workerId === workerId);
      replaceMs.push(Math.round(performance.now() - at));
    }
  } finally {
    clearInterval(feed);
    await producer.disconnect();
    await supervisor.stop();
    supervisor.store.close();
  }
  return replaceMs;
}

const results = [];
for (const workers of counts) results.push(await measure(workers));
const throws = await measureThrows();
await broker.release();
if (values.json) process.stdout.write(JSON.stringify({ brokers: broker.brokers, results, uncaughtErrorReplaceMs: throws }) + '\n');
else {
  console.log('workers  start→all ready  RSS/worker  heap/worker  killed thread→replacement ready (median)');
  for (const r of results) console.log(`${String(r.workers).padEnd(8)} ${`${r.readyMs} ms`.padEnd(16)} ${`${r.rssPerWorkerMiB} MiB`.padEnd(11)} ${`${r.heapPerWorkerMiB} MiB`.padEnd(12)} ${r.replaceMsMedian} ms  (${r.replaceMs.join(', ')})`);
  console.log(`uncaught error in a handler → replacement ready (2 workers, session timeout 6 s): median ${Math.round(median(throws))} ms  (${throws.join(', ')})`);
}
process.exit(0);
