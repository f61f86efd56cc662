import { startWharf, type Wharf, type WharfStopResult } from '../app/start.js';
import { loadConfig } from '../config/load.js';
import { WORKER_LIMITS } from '../config/schema.js';
import { loadServices } from '../config/services.js';
import { UsageError, WharfError } from '../errors.js';
import { HTTP_ADDRESS_RULE, parseHttpAddress } from '../http/address.js';
import { createLogger } from '../log.js';
import { persistSettings } from '../persist/open.js';
import { intFlag, parseFlags, type Command, type CommandContext } from './args.js';

const HELP = `Usage: npm start -- [flags]      (or: wharf start [flags])

Starts a supervisor with the services of wharf.config.json (or .js/.mjs) in this folder, or of
--config FILE, or the built-in demo (Tony ↔ Jarvis) when there is none. Resolves a broker first:
KAFKA_BROKERS, else a Docker engine, else the local Apache Kafka broker (started if needed).
Runs until SIGINT/SIGTERM, then drains every worker and exits 0 (1 if some did not finish in time).
A second signal exits at once.

Flags:
  --config FILE    the services to run
  --workers N      consumer workers for every service that consumes (1…64)
  --rate R         producer messages per second for every service that produces (demo default 2)
  --http HOST:PORT the HTTP listener for /metrics (default 127.0.0.1:9464, or the config's "http";
                   port 0 picks a free one; "off": none). Printed at start and written to
                   .wharf/admin.json
  -h, --help       this help
`;

const FLAGS = {
  config: { type: 'string' },
  workers: { type: 'string' },
  rate: { type: 'string' },
  http: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function rateFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const rate = Number(value);
  if (!Number.isFinite(rate) || rate <= 0 || rate > 1_000_000)
    throw new UsageError(`--rate must be a number of messages per second above 0 (at most 1000000); got "${value}".`);
  return rate;
}

function httpFlag(value: string | undefined): string | undefined {
  if (value !== undefined && parseHttpAddress(value) === undefined)
    throw new UsageError(`--http must be ${HTTP_ADDRESS_RULE}; got "${value}".`);
  return value;
}

async function run({ argv, env, stdout }: CommandContext): Promise<number> {
  const { values } = parseFlags(argv, FLAGS, 'npm start');
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  const flags = {
    config: values.config,
    workers: values.workers === undefined ? undefined : intFlag(values.workers, 'workers', { ...WORKER_LIMITS.consumer, fallback: 1 }),
    rate: rateFlag(values.rate),
    http: httpFlag(values.http),
  };
  // Everything that can be wrong with the config fails here, before a broker or a worker starts.
  const config = await loadConfig(flags);
  const services = await loadServices(config);
  // Shared-state persistence settings (WHARF_STATE_*) too, before any output; startWharf uses them.
  persistSettings(config, env);
  const logger = createLogger({ fd: 1 });
  logger.info(
    { config: config.source, services: services.map((s) => `${s.name} (${s.workers.consumer} consumer, ${s.workers.producer} producer)`) },
    'wharf starting',
  );

  // First signal: drain (or give up a start in progress) and exit 0 (1 if a worker did not finish). Second: end every thread now, exit 130.
  const interrupt = new AbortController();
  const force = new AbortController();
  let wharf: Wharf | undefined;
  let signals = 0;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now without draining');
      force.abort();
      if (wharf) void wharf.terminate().then(() => resolveStopped(130));
      return;
    }
    logger.info(
      { signal, drainTimeoutMs: config.supervisor.drainTimeoutMs },
      'draining: finishing in-flight work, committing offsets, leaving groups',
    );
    interrupt.abort();
    if (wharf) void wharf.stop().then((result) => resolveStopped(signals > 1 ? 130 : exitCode(result)));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    try {
      wharf = await startWharf({
        config,
        services,
        env,
        logger,
        print: (line) => stdout.write(`${line}\n`),
        pretty: Boolean(process.stdout.isTTY),
        signal: interrupt.signal,
        terminateSignal: force.signal,
      });
    } catch (error) {
      // A signal during the start: what had started was released (drained: its workers finished in time).
      if (error instanceof WharfError && error.code === 'ERR_ABORTED')
        return signals > 1 ? 130 : error.context.drained === false || error.context.persisted === false ? 1 : 0;
      throw error;
    }
    return await stopped;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  function exitCode(result: WharfStopResult): number {
    if (!result.ok) logger.error({ unfinished: result.unfinished }, `drain timed out; did not finish: ${result.unfinished.join(', ')}`);
    else logger.info('all workers drained; bye');
    return result.ok && result.persisted ? 0 : 1;
  }
}

export const startCommand: Command = { name: 'start', summary: 'run a supervisor with the configured services (the demo by default)', run };
