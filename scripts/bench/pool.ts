/**
 * The thread pool against the one-consumer-per-partition limit, on a CPU-bound handler (about
 * 1 ms of chained SHA-256 per message) and a 2-partition topic:
 *   bare       a kafkajs consumer in this thread, the handler inline (the baseline)
 *   workers-2  wharf, 2 consumer workers, no pool: one thread per partition, the most a group gives
 *   pool-N     wharf, 1 consumer worker with `consumes.concurrency: { mode: 'key', threads: N }`
 * Each measurement drains an identical topic whose messages sit in an open Kafka transaction
 * until the consumers have joined (read_committed consumers see nothing before): the clock runs
 * from the commit to the last message handled, so thread start-up and rebalances are not counted.
 * Repetitions are interleaved, so load from elsewhere spreads over every variant; figures are
 * medians. The 1-minute load average is reported: the broker shares this machine's CPUs.
 *
 *   npm run build && node dist/scripts/bench/pool.js [--messages 5000] [--reps 3] [--threads 1,2,4] [--work-ms 1] [--json]
 * (`--work-ms 0`: a handler that does nothing, to see what dispatching to the pool costs.)
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import type { Kafka } from 'kafkajs';
import { parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { resolveBroker } from '../../src/kafka/broker.js';
import { consumerConfig, createKafka, producerConfig } from '../../src/kafka/client.js';
import { createTopics } from '../../src/kafka/topics.js';
import { burnCpu } from '../load/cpu-work.js';
import { waitForStableGroup } from '../load/lag.js';
import { HANDLED_COUNTER, SINK_MODULE } from '../load/sink.js';
import { createLogger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { createSupervisor } from '../../src/supervisor/supervisor.js';
import { benchFlags, countFlag, countListFlag, HELP_FLAG, parseFlags, usageExit } from './flags.js';

const COMMAND = 'node dist/scripts/bench/pool.js';
const USAGE = `Usage: ${COMMAND} [--messages N] [--reps N] [--threads LIST] [--work-ms MS] [--json]

The key-ordered thread pool against a bare kafkajs consumer and 2 plain workers, on a CPU-bound handler.
  --messages N     messages per measure (default 5000)
  --reps N         repetitions, interleaved; medians reported (default 3)
  --threads LIST   pool sizes, comma-separated (default 1,2,4)
  --work-ms MS     CPU time per message in ms (default 1; 0: a handler that does nothing)
  --json           one JSON object on stdout
  -h, --help       this help
`;
const values = benchFlags(USAGE, (argv) =>
  parseFlags(argv, { json: { type: 'boolean' }, messages: { type: 'string' }, reps: { type: 'string' }, threads: { type: 'string', default: '1,2,4' }, 'work-ms': { type: 'string', default: '1' }, ...HELP_FLAG }, COMMAND).values,
);
const MESSAGES = countFlag(COMMAND, values.messages, 'messages', { min: 1, max: 10_000_000, fallback: 5_000 });
const REPS = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 3 });
const THREADS = countListFlag(COMMAND, values.threads, 'threads', { min: 1, max: 256 });
const WORK_MS = Number(values['work-ms']);
if (!(WORK_MS >= 0 && WORK_MS <= 1_000)) usageExit(`--work-ms must be a number of milliseconds from 0 to 1000; got "${values['work-ms']}". Run \`${COMMAND} --help\`.`);
const logger = createLogger({ fd: 2, level: 'warn' });
// Workers log to stdout at the supervisor's level: with --json, stdout carries the report alone.
const serviceLogger = createLogger({ fd: 2, level: values.json ? 'silent' : 'error' });
const broker = await resolveBroker({ logger });
const kafka: Kafka = createKafka({ brokers: broker.brokers, logger, clientId: 'wharf-bench-pool' });
const admin = kafka.admin();
await admin.connect();
const load = () => Math.round(loadavg()[0]! * 100) / 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Hash iterations costing about `targetMs` of CPU. Timed in CPU time (process.cpuUsage, this
 * thread being the only busy one now), not wall time: on a loaded machine wall time would count
 * the waits for a core and make the work too small.
 */
function calibrateByCpuTime(targetMs: number) {
  const probe = 20_000;
  burnCpu(probe);
  const perIteration: number[] = [];
  for (let i = 0; i < 7; i++) {
    const before = process.cpuUsage();
    burnCpu(probe);
    const used = process.cpuUsage(before);
    perIteration.push((used.user + used.system) / 1_000 / probe);
  }
  const ms = median(perIteration);
  const iterations = Math.max(1, Math.round(targetMs / ms));
  return { iterations, msPerCall: Math.round(iterations * ms * 1_000) / 1_000 };
}

interface Sink {
  members: number;
  handled(): number | Promise<number>;
  stop(): Promise<void>;
}

type Variant = { name: string; start(topic: string): Promise<Sink> };

function wharf(name: string, workers: number, concurrency?: { mode: 'key'; threads: number }): Variant {
  return {
    name,
    async start(topic) {
      const config = parseConfig(
        {
          services: [{ module: compiled(SINK_MODULE), workers: { consumer: workers }, consumes: { topics: [topic], groupId: topic, ...(concurrency ? { concurrency } : {}) }, options: { hashIterations: work.iterations } }],
          kafka: { clientId: 'wharf-bench-pool' },
        },
        'bench',
        process.cwd(),
      );
      const supervisor = createSupervisor({ config, services: await loadServices(config), brokers: broker.brokers, logger: serviceLogger });
      await supervisor.start();
      const counter = supervisor.store.local.counter(HANDLED_COUNTER);
      return { members: workers, handled: () => counter.get(), stop: async () => (await supervisor.stop(), supervisor.store.close()) };
    },
  };
}

const bare: Variant = {
  name: 'bare',
  async start(topic) {
    const consumer = kafka.consumer(consumerConfig(topic));
    let handled = 0;
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async () => void (burnCpu(work.iterations), handled++) });
    return { members: 1, handled: () => handled, stop: () => consumer.disconnect() };
  },
};

const work = WORK_MS > 0 ? calibrateByCpuTime(WORK_MS) : { iterations: 0, msPerCall: 0 };
const variants: Variant[] = [bare, wharf('workers-2', 2), ...THREADS.map((n) => wharf(`pool-${n}`, 1, { mode: 'key', threads: n }))];

/** One drain: the topic filled inside an open transaction, committed once the group is stable. */
async function measure(variant: Variant) {
  const topic = `wharf-bench-pool-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  // Under load the leader check right after creation can fail transiently: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await createTopics(admin, [{ topic, numPartitions: 2 }]);
      break;
    } catch (error) {
      if (!(error as { retriable?: boolean }).retriable || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
  const producer = kafka.producer(producerConfig({ transactionalId: topic, maxInFlightRequests: 1, idempotent: true }));
  await producer.connect();
  const transaction = await producer.transaction();
  for (let done = 0; done < MESSAGES; done += 1_000) {
    await transaction.send({ topic, acks: -1, messages: Array.from({ length: Math.min(1_000, MESSAGES - done) }, (_, i) => ({ key: `k${(done + i) % 200}`, value: `{"i":${done + i}}` })) });
  }
  let sink: Sink | undefined;
  try {
    sink = await variant.start(topic);
    await waitForStableGroup(admin, topic, sink.members);
    await transaction.commit();
    const opened = performance.now();
    while ((await sink.handled()) < MESSAGES) {
      if (performance.now() - opened > 300_000) throw new Error(`${variant.name} handled ${await sink.handled()} of ${MESSAGES} in 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const seconds = (performance.now() - opened) / 1_000;
    return { msgsPerSec: Math.round(MESSAGES / seconds), load: load() };
  } finally {
    await sink?.stop();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  }
}

const loadBefore = load();
const runs = new Map<string, { msgsPerSec: number; load: number }[]>(variants.map((v) => [v.name, []]));
for (let rep = 0; rep < REPS; rep++) for (const variant of variants) runs.get(variant.name)!.push(await measure(variant));
const baseline = median(runs.get('bare')!.map((r) => r.msgsPerSec));
const results = variants.map(({ name }) => {
  const rates = runs.get(name)!.map((r) => r.msgsPerSec);
  return { variant: name, msgsPerSec: median(rates), spread: [Math.min(...rates), Math.max(...rates)], vsBare: Math.round((median(rates) / baseline) * 100) / 100, load: runs.get(name)!.map((r) => r.load) };
});
const report = { cpus: availableParallelism(), node: process.version, messages: MESSAGES, reps: REPS, hashIterations: work.iterations, msPerMessage: work.msPerCall, loadBefore, loadAfter: load(), results };
await admin.disconnect();
await broker.release();

if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
else {
  console.log(`${MESSAGES} messages, 2 partitions, ${work.iterations} hashes ≈ ${work.msPerCall} ms per message, ${REPS} reps (median), ${report.cpus} CPUs, load average ${loadBefore} → ${report.loadAfter}`);
  console.log('variant     msg/s  [min–max]        × bare  load (1 min) per rep');
  for (const r of results) console.log(`${r.variant.padEnd(10)} ${String(r.msgsPerSec).padStart(6)}  ${`[${r.spread.join('–')}]`.padEnd(16)} ${`${r.vsBare.toFixed(2)}×`.padStart(6)}  ${r.load.join(', ')}`);
}
process.exit(0);
