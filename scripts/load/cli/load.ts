import { resolve } from 'node:path';
import { WORKER_LIMITS } from '../../../src/config/schema.js';
import { UsageError } from '../../../src/errors.js';
import { resolveBroker } from '../../../src/kafka/broker.js';
import type { LoadLimit } from '../generator.js';
import { createProgressView } from '../progress.js';
import { MIN_REQUEST_BYTES } from '../request.js';
import { writeReport } from '../report-html.js';
import { runLoad, type LoadResult } from '../run.js';
import { BUILT_IN_SERVICES, resolveTarget, type LoadTarget } from '../target.js';
import { createLogger, levelFromEnv } from '../../../src/log.js';
import { intFlag, parseFlags, writeJson, type Command, type CommandContext } from '../../../src/cli/args.js';

const HELP = `Usage: npm run load -- [flags]      (or: node dist/scripts/load.js [flags])

Drives real request/reply traffic through a real service on the resolved broker (KAFKA_BROKERS,
else Docker, else the local broker): an in-process supervisor runs the service with --workers
consumer workers on topics of the run's own; every request carries an id and the time it was
due; replies are matched by id. Prints throughput, end-to-end latency percentiles (HDR
histogram), errors, lost and duplicated requests. Exits 1 if any request was lost.

Flags:
  --messages N       requests to send (default 10000; not with --duration)
  --duration S       send for S seconds instead
  --rate R           requests per second, scheduled (open loop); default: as fast as --in-flight allows
  --in-flight N      requests awaiting a reply at most (default 1000 without --rate, no cap with it)
  --size BYTES       bytes of each request's JSON value (${MIN_REQUEST_BYTES} up to the broker's limit; default 256)
  --keys K           distinct message keys, spread over partitions (0: no key; default 100)
  --workers W        consumer workers of the service (1…64; default 2)
  --partitions P     partitions of the run's request and reply topics (default 6, or W if larger)
  --service NAME     ${Object.keys(BUILT_IN_SERVICES).join(' or ')} (default jarvis), or the path of a compiled service module that answers with ctx.reply
  --warmup S         leave requests due in the first S seconds out of the latency percentiles (default 0):
                     a cold service (JIT, connections) answers its first seconds slowly; they still count
                     for throughput, lost and duplicates, and show in the report's charts
  --wait S           once everything is sent, how long to wait without a reply before counting the rest lost (default 30)
  --json             print one JSON object with every figure on stdout (progress goes to stderr)
  --report FILE      write a self-contained HTML report with throughput and latency charts
  -h, --help         this help
`;

const FLAGS = {
  messages: { type: 'string' },
  duration: { type: 'string' },
  rate: { type: 'string' },
  'in-flight': { type: 'string' },
  size: { type: 'string' },
  keys: { type: 'string' },
  workers: { type: 'string' },
  partitions: { type: 'string' },
  service: { type: 'string' },
  wait: { type: 'string' },
  warmup: { type: 'string' },
  json: { type: 'boolean' },
  report: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A number flag above 0 (fractions allowed), or a UsageError naming it. */
function positiveFlag(value: string | undefined, flag: string, what: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0 || number > max) {
    throw new UsageError(`--${flag} must be ${what} above 0 (at most ${max}); got "${value}".`);
  }
  return number;
}

export interface LoadFlags {
  target: LoadTarget;
  limit: LoadLimit;
  rate: number | null;
  maxInFlight: number | null;
  size: number;
  keys: number;
  workers: number;
  partitions: number;
  waitMs: number;
  warmupMs: number;
  json: boolean;
  report: string | undefined;
}

/** Every flag checked before a broker is resolved, so a bad command line costs nothing. */
export function parseLoadFlags(argv: string[], cwd = process.cwd()): LoadFlags | 'help' {
  const { values } = parseFlags(argv, FLAGS, 'npm run load');
  if (values.help) return 'help';
  if (values.messages !== undefined && values.duration !== undefined) {
    throw new UsageError('--messages and --duration cannot be used together: give a number of requests or a number of seconds.');
  }
  const duration = positiveFlag(values.duration, 'duration', 'a number of seconds', 86_400);
  const limit: LoadLimit =
    duration !== undefined
      ? { durationMs: duration * 1_000 }
      : { messages: intFlag(values.messages, 'messages', { min: 1, max: 100_000_000, fallback: 10_000 }) };
  const rate = positiveFlag(values.rate, 'rate', 'a number of messages per second', 1_000_000) ?? null;
  const inFlight =
    values['in-flight'] === undefined ? undefined : intFlag(values['in-flight'], 'in-flight', { min: 1, max: 1_000_000, fallback: 1_000 });
  const workers = intFlag(values.workers, 'workers', { ...WORKER_LIMITS.consumer, fallback: 2 });
  const warmup = values.warmup === undefined ? 0 : Number(values.warmup);
  if (values.warmup !== undefined && (values.warmup.trim() === '' || !Number.isFinite(warmup) || warmup < 0 || warmup > 3_600)) {
    throw new UsageError(`--warmup must be a number of seconds from 0 to 3600; got "${values.warmup}".`);
  }
  if (duration !== undefined && warmup >= duration) {
    throw new UsageError(
      `--warmup ${warmup} leaves nothing of a --duration ${duration} run to measure: use a warm-up shorter than the duration.`,
    );
  }
  return {
    target: resolveTarget(values.service ?? 'jarvis', cwd),
    limit,
    rate,
    maxInFlight: inFlight ?? (rate === null ? 1_000 : null),
    // The broker's own limit is checked once it is reachable (scripts/load/broker-limits.ts).
    size: intFlag(values.size, 'size', { min: MIN_REQUEST_BYTES, max: 100 * 1024 * 1024, fallback: 256 }),
    keys: intFlag(values.keys, 'keys', { min: 0, max: 1_000_000, fallback: 100 }),
    workers,
    partitions: intFlag(values.partitions, 'partitions', { min: 1, max: 1_000, fallback: Math.max(6, workers) }),
    waitMs: (positiveFlag(values.wait, 'wait', 'a number of seconds', 3_600) ?? 30) * 1_000,
    warmupMs: warmup * 1_000,
    json: values.json ?? false,
    report: values.report === undefined ? undefined : resolve(cwd, values.report),
  };
}

const n = (v: number) => v.toLocaleString('en-US');
const ms = (v: number | null) => (v === null ? '–' : v.toFixed(2));

export function formatSummary(r: LoadResult): string {
  const lines = [
    `wharf load: ${r.service}, ${r.workers} consumer worker${r.workers > 1 ? 's' : ''}, ${r.partitions} partitions, ${r.size} B requests, ` +
      (r.rate === null ? `rate unlimited (${n(r.maxInFlight ?? 0)} in flight)` : `${n(r.rate)}/s scheduled`),
    `  sent ${n(r.sent)}  answered ${n(r.answered)}  lost ${n(r.lost)}  duplicates ${n(r.duplicates)}  errors ${n(r.errors)}` +
      ` (dead-lettered ${n(r.deadLettered)}, send errors ${n(r.sendErrors)}, unknown replies ${n(r.unknownReplies)}, worker crashes ${r.crashes.length})`,
    `  throughput ${n(r.throughput.answeredPerSec)} answered/s (sent ${n(r.throughput.sentPerSec)}/s) over ${r.elapsedS.toFixed(1)} s`,
    `  latency ms${r.warmupS > 0 ? ` (after a ${r.warmupS} s warm-up)` : ''}  p50 ${ms(r.latencyMs.p50)}  p90 ${ms(r.latencyMs.p90)}  p99 ${ms(r.latencyMs.p99)}  p99.9 ${ms(r.latencyMs.p999)}  max ${ms(r.latencyMs.max)}`,
    `  machine: ${r.machine.cpus} CPUs, Node ${r.machine.node}, load average ${r.machine.loadavg.join(' ')}`,
  ];
  if (r.aborted) lines.push('  interrupted: sending stopped early at Ctrl-C');
  return lines.join('\n') + '\n';
}

async function run({ argv, env, stdout, stderr, logger }: CommandContext): Promise<number> {
  const flags = parseLoadFlags(argv);
  if (flags === 'help') {
    stdout.write(HELP);
    return 0;
  }
  const progressStream = flags.json ? stderr : stdout;
  const view = createProgressView({ stream: progressStream, tty: Boolean((progressStream as NodeJS.WriteStream).isTTY) });
  // Worker threads log to stdout; with --json nothing but the result may go there.
  const serviceLogger = createLogger({ fd: 2, level: flags.json ? 'silent' : levelFromEnv(env, 'warn') });
  const broker = await resolveBroker({ logger, env });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  let result: LoadResult;
  try {
    result = await runLoad({
      brokers: broker.brokers,
      target: flags.target,
      workers: flags.workers,
      partitions: flags.partitions,
      limit: flags.limit,
      rate: flags.rate,
      maxInFlight: flags.maxInFlight,
      size: flags.size,
      keys: flags.keys,
      logger,
      serviceLogger,
      onTick: (p) => view.tick(p),
      signal: abort.signal,
      settleTimeoutMs: flags.waitMs,
      warmupMs: flags.warmupMs,
    });
  } finally {
    view.done();
    process.removeListener('SIGINT', onSignal);
    await broker.release();
  }
  if (flags.report) writeReport(flags.report, result);
  if (flags.json) writeJson(stdout, { ...result, report: flags.report ?? null });
  else stdout.write(formatSummary(result) + (flags.report ? `  report: ${flags.report}\n` : ''));
  if (result.lost > 0) {
    stderr.write(
      `wharf: lost ${n(result.lost)} of ${n(result.acked)} requests Kafka acknowledged (no reply and no dead letter; first ids: ${result.lostSample.join(', ')}). Does the service answer every request with ctx.reply? The run's topics are kept for a look: ${result.topics.requests}, ${result.topics.replies}, ${result.topics.deadLetters}.\n`,
    );
    return 1;
  }
  return 0;
}

export const loadCommand: Command = {
  name: 'load',
  summary: 'drive real traffic through a service and measure throughput, latency and losses',
  run,
};
