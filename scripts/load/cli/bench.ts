import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../../src/errors.js';
import { resolveBroker } from '../../../src/kafka/broker.js';
import { SECTIONS, runBench, type Section } from '../bench.js';
import { formatBench } from '../bench-format.js';
import { createLogger, levelFromEnv } from '../../../src/log.js';
import { intFlag, parseFlags, writeJson, type Command, type CommandContext } from '../../../src/cli/args.js';

const HELP = `Usage: npm run bench -- [flags]      (or: node dist/scripts/bench/run.js [flags])

Measures wharf against baselines in the same run on the same broker, as ratios of medians over
interleaved repetitions:
  consume    a no-op wharf service vs a hand-written kafkajs service (JSON decode, handler, commit) and
             the bare kafkajs consumer (eachMessage, eachBatch) on one pre-filled topic
  scaling    1, 2 and 4 wharf workers with a CPU-bound handler (~1 ms of hashing per message) vs the bare
             consumer and the machine's ceiling: the same handler on 1 and 2 plain threads, no Kafka
  pool       the key-ordered pool (1 worker, 1 and 2 threads) on 2 partitions vs 2 workers, the bare
             consumer and the machine's ceiling
  state      shared state vs comlink and Python's multiprocessing.Manager (scripts/bench/state.ts)
  roundtrip  request/reply through Jarvis vs a bare kafkajs responder, awaited and 100 in flight; then
             capacity (also alone: --only capacity): 1 KB requests at rising rates, the highest whose
             p99 stays under 50 ms, a step over it measured once more (roundtrip.capacity)
  python     the Python client (clients/python) vs Python's multiprocessing.Manager, awaited and pipelined
  cluster    a deployment's shared state: a persisted call on the owner, routed from another member, and
             through the store as before deployments; failover after the owner's SIGKILL (docs/cluster.md)
Writes the figures to bench/results/<timestamp>.json so runs can be compared.
A full run takes about 25 minutes on 2 cores; --quick about 8 (--only picks sections).

Flags:
  --quick          fewer messages per measure
  --reps N         repetitions per measure (default 3; the median is reported)
  --only LIST      some sections, comma-separated: ${SECTIONS.join(',')}
  --http on|off    wharf with its HTTP listener in use (on, the default, as npm start runs: workers count for
                   /metrics, scraped every second, and a dashboard page open), or without it (off: nothing counted)
  --out DIR        where to write the JSON (default bench/results)
  --json           print the report as one JSON object on stdout (progress goes to stderr)
  -h, --help       this help
`;

const FLAGS = {
  quick: { type: 'boolean' },
  reps: { type: 'string' },
  only: { type: 'string' },
  http: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseSections(value: string | undefined): Section[] {
  if (value === undefined) return [...SECTIONS];
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (names.length === 0 || unknown.length > 0) throw new UsageError(`--only takes sections from ${SECTIONS.join(', ')}; got "${value}".`);
  return names as Section[];
}

async function run({ argv, env, stdout, stderr, logger }: CommandContext): Promise<number> {
  const { values } = parseFlags(argv, FLAGS, 'npm run bench');
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  const quick = values.quick ?? false;
  const reps = intFlag(values.reps, 'reps', { min: 1, max: 50, fallback: 3 });
  const sections = parseSections(values.only);
  if (values.http !== undefined && values.http !== 'on' && values.http !== 'off')
    throw new UsageError(`--http takes on or off; got "${values.http}".`);
  const http = values.http !== 'off';
  const outDir = resolve(values.out ?? join('bench', 'results'));
  const say = (line: string) => void stderr.write(`bench: ${line}\n`);
  // Worker threads log to stdout: silent when stdout carries the JSON object.
  const serviceLogger = createLogger({ fd: 2, level: values.json ? 'silent' : levelFromEnv(env, 'error') });
  const broker = await resolveBroker({ logger, env });
  try {
    const report = await runBench({ brokers: broker.brokers, quick, reps, sections, http, logger, serviceLogger, say });
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${report.startedAt.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
    writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
    if (values.json) writeJson(stdout, { ...report, file });
    else stdout.write(formatBench(report, file));
    return 0;
  } finally {
    await broker.release();
  }
}

export const benchCommand: Command = { name: 'bench', summary: 'compare wharf with bare kafkajs and Python baselines in one run', run };
