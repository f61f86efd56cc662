/**
 * Garbage collection's share of a consumer thread's CPU while it drains a topic as the bench's
 * consume section drains one (scripts/load/bench-consume.ts): the no-op wharf service, and the
 * hand-written kafkajs service. Each drain runs in a child process under V8's CPU profiler; the
 * consumer thread's profile gives its busy time and the part of it spent in "(garbage
 * collector)". A share, unlike msg/s, hardly moves with the machine's speed, which on these
 * machines moves a drain's rate by ±15 % from one minute to the next. `--young` compares young
 * generation sizes (src/config/schema.ts `maxYoungGenerationSizeMb`; docs/performance.md).
 *
 *   npm run build && node dist/scripts/bench/drain-gc.js [--variants wharf,hand-written] [--young 48,64] [--messages 300000] [--reps 3] [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveBroker } from '../../src/kafka/broker.js';
import { createKafka } from '../../src/kafka/client.js';
import { createLogger } from '../../src/log.js';
import { consumeWithKafkajs, consumeWithWharf } from '../load/bench-consume.js';
import { median } from '../load/bench-stats.js';
import { benchFlags, countFlag, countListFlag, HELP_FLAG, parseFlags, usageExit } from './flags.js';

const COMMAND = 'node dist/scripts/bench/drain-gc.js';
const USAGE = `Usage: ${COMMAND} [--variants LIST] [--young LIST] [--messages N] [--reps N] [--json]

Garbage collection's share of the consumer thread's CPU in a consume drain (as npm run bench's consume section).
  --variants LIST  wharf, hand-written, or both comma-separated (default both)
  --young LIST     young generation sizes in MB, comma-separated; 0 is each side's default (default 0)
  --messages N     messages per drain (default 300000)
  --reps N         repetitions, interleaved; medians reported (default 3)
  --json           one JSON object on stdout
  -h, --help       this help
`;

const VARIANTS = ['wharf', 'hand-written'] as const;
type Variant = (typeof VARIANTS)[number];
/** What a child process drains: set in its environment by the parent, which reads its profile. */
const CHILD_ENV = 'WHARF_DRAIN_GC_CHILD';
interface ChildSpec {
  variant: Variant;
  youngMb: number;
  messages: number;
}

const child = process.env[CHILD_ENV];
if (child) await drainOnce(JSON.parse(child) as ChildSpec);
else await compare();

/** In the child: one drain; its rate on stdout. The profiler writes one file per thread as they end. */
async function drainOnce({ variant, youngMb, messages }: ChildSpec): Promise<void> {
  const logger = createLogger({ fd: 2, level: 'warn' });
  const broker = await resolveBroker({ logger });
  const kafka = createKafka({ brokers: broker.brokers, logger, clientId: 'wharf-drain-gc' });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const base = { brokers: broker.brokers, kafka, admin, partitions: 12, expected: messages, hashIterations: 0, logger, youngGenerationMb: youngMb || undefined };
    const result =
      variant === 'wharf' ? await consumeWithWharf({ ...base, http: true, workers: 1 }) : await consumeWithKafkajs({ ...base, mode: 'handWritten' });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await admin.disconnect();
    await broker.release();
  }
}

interface ThreadProfile {
  busyMs: number;
  gcMs: number;
}

/** Busy and GC time of one thread's .cpuprofile (samples weighted by their time deltas). */
function readProfile(file: string): ThreadProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const names = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName]));
  let all = 0;
  let idle = 0;
  let gc = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    all += us;
    if (names.get(id) === '(idle)') idle += us;
    else if (names.get(id) === '(garbage collector)') gc += us;
  });
  return { busyMs: (all - idle) / 1_000, gcMs: gc / 1_000 };
}

async function compare(): Promise<void> {
  const values = benchFlags(USAGE, (argv) =>
    parseFlags(
      argv,
      {
        variants: { type: 'string', default: VARIANTS.join(',') },
        young: { type: 'string', default: '0' },
        messages: { type: 'string' },
        reps: { type: 'string' },
        json: { type: 'boolean' },
        ...HELP_FLAG,
      },
      COMMAND,
    ).values,
  );
  const variants = values.variants.split(',').map((v) => v.trim());
  const unknown = variants.filter((v) => !(VARIANTS as readonly string[]).includes(v));
  if (unknown.length > 0 || variants.length === 0)
    usageExit(`--variants takes ${VARIANTS.join(', ')}; got "${values.variants}". Run \`${COMMAND} --help\`.`);
  const youngs = countListFlag(COMMAND, values.young, 'young', { min: 0, max: 4_096 });
  const messages = countFlag(COMMAND, values.messages, 'messages', { min: 1_000, max: 10_000_000, fallback: 300_000 });
  const reps = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 100, fallback: 3 });
  const logger = createLogger({ fd: 2, level: 'warn' });
  // Started once here, shared by the children (they find it in KAFKA_BROKERS).
  const broker = await resolveBroker({ logger });
  const load = () => Math.round(loadavg()[0]! * 100) / 100;
  const loadBefore = load();
  const cases = variants.flatMap((variant) => youngs.map((youngMb) => ({ variant: variant as Variant, youngMb, messages })));
  const name = (c: ChildSpec) => `${c.variant}, young ${c.youngMb || 'default'}`;
  const runs = new Map(cases.map((c) => [name(c), [] as (ThreadProfile & { msgsPerSec: number })[]]));
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < cases.length; i++) {
        const spec = cases[(i + rep) % cases.length]!;
        const dir = mkdtempSync(join(tmpdir(), 'wharf-drain-gc-'));
        try {
          const result = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, fileURLToPath(import.meta.url)], {
            env: { ...process.env, [CHILD_ENV]: JSON.stringify(spec), KAFKA_BROKERS: broker.brokers.join(',') },
            encoding: 'utf8',
            timeout: 600_000,
          });
          if (result.status !== 0) throw new Error(`the ${name(spec)} drain failed (exit ${result.status}): ${result.stderr.trim().split('\n').at(-1)}`);
          const { msgsPerSec } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { msgsPerSec: number };
          // The consumer thread: of the threads other than the main one (thread id 0), the busiest.
          const threads = readdirSync(dir)
            .filter((f) => f.endsWith('.cpuprofile') && f.split('.')[4] !== '0')
            .map((f) => readProfile(join(dir, f)));
          const consumer = threads.sort((a, b) => b.busyMs - a.busyMs)[0];
          if (!consumer) throw new Error(`the ${name(spec)} drain left no consumer thread profile`);
          runs.get(name(spec))!.push({ ...consumer, msgsPerSec });
          process.stderr.write(
            `rep ${rep + 1}/${reps} ${name(spec)}: GC ${Math.round(consumer.gcMs)} of ${Math.round(consumer.busyMs)} ms busy, ${msgsPerSec.toLocaleString('en-US')} msg/s\n`,
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await broker.release();
  }
  const results = [...runs].map(([variant, r]) => ({
    variant,
    gcSharePct: Math.round(median(r.map((x) => (x.gcMs / x.busyMs) * 100)) * 10) / 10,
    busyMs: Math.round(median(r.map((x) => x.busyMs))),
    gcMs: Math.round(median(r.map((x) => x.gcMs))),
    msgsPerSec: Math.round(median(r.map((x) => x.msgsPerSec))),
  }));
  const report = { messages, reps, node: process.version, loadBefore, loadAfter: load(), results };
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    console.log(`${messages.toLocaleString('en-US')} messages a drain, ${reps} reps (medians), load average ${loadBefore} → ${report.loadAfter}`);
    console.log('variant                       GC % of busy   busy ms   GC ms      msg/s');
    for (const r of results)
      console.log(
        `${r.variant.padEnd(28)} ${String(r.gcSharePct).padStart(13)} ${String(r.busyMs).padStart(9)} ${String(r.gcMs).padStart(7)} ${r.msgsPerSec.toLocaleString('en-US').padStart(10)}`,
      );
  }
}
