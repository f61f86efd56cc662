import { loadConfig } from '../config/load.js';
import { WORKER_LIMITS } from '../config/schema.js';
import { loadServices } from '../config/services.js';
import { describeError } from '../errors.js';
import { resolveBroker } from '../kafka/broker.js';
import { dlqAdminMethods } from '../admin/dead-letter.js';
import { createLogger } from '../log.js';
import { stateHome } from '../paths.js';
import { startAdminServer } from '../admin/server.js';
import { adminStateApi } from '../admin/state.js';
import { openStatePersistence, persistSettings } from '../persist/open.js';
import { createSupervisor } from '../supervisor/supervisor.js';
import { intFlag, parseFlags, type Command, type CommandContext } from './args.js';
import { UsageError } from '../errors.js';

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
  -h, --help       this help
`;

const FLAGS = {
  config: { type: 'string' },
  workers: { type: 'string' },
  rate: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function rateFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const rate = Number(value);
  if (!Number.isFinite(rate) || rate <= 0 || rate > 1_000_000) throw new UsageError(`--rate must be a number of messages per second above 0 (at most 1000000); got "${value}".`);
  return rate;
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
  };
  // Everything that can be wrong with the config fails here, before a broker or a worker starts.
  const config = await loadConfig(flags);
  const services = await loadServices(config);
  // Shared-state persistence, settings: checked with the rest of the config, before any broker.
  const persist = persistSettings(config, env);
  const logger = createLogger({ fd: 1 });
  logger.info({ config: config.source, services: services.map((s) => `${s.name} (${s.workers.consumer} consumer, ${s.workers.producer} producer)`) }, 'wharf starting');
  const broker = await resolveBroker({ logger, env });
  // Shared-state persistence, restore: the store is rebuilt from its changelog before any worker exists.
  const persistence = await openStatePersistence({ settings: persist, brokers: broker.brokers, logger, clientId: config.kafka.clientId });
  const supervisor = createSupervisor({ config, services, brokers: broker.brokers, logger, pretty: Boolean(process.stdout.isTTY), store: persistence.store });

  let signals = 0;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = async (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting now without draining');
        await supervisor.terminateAll();
        return resolve(130);
      }
      logger.info({ signal, drainTimeoutMs: config.supervisor.drainTimeoutMs }, 'draining: finishing in-flight work, committing offsets, leaving groups');
      const result = await supervisor.stop();
      if (!result.ok) logger.error({ unfinished: result.unfinished }, `drain timed out; did not finish: ${result.unfinished.join(', ')}`);
      else logger.info('all workers drained; bye');
      resolve(result.ok ? 0 : 1);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  // Before any worker: a second supervisor in this folder fails here, and operators can watch start-up.
  const { store } = supervisor;
  const admin = await startAdminServer({
    api: {
      state: adminStateApi(store),
      status: () => supervisor.status(),
      scale: (service, consumers) => supervisor.scale(service, consumers),
      // Dead letters: `npm run admin -- dlq list|show|replay` (src/kafka/dead-letter-admin.ts).
      extra: dlqAdminMethods({ brokers: broker.brokers, clientId: config.kafka.clientId, topics: services.flatMap((s) => s.consumes?.topics ?? []), state: store.local, logger }),
    },
    dir: stateHome(env),
    logger,
  });
  logger.info({ address: admin.address }, 'admin socket open: `npm run admin -- workers` from this folder');

  // Observers first, so they see the first exchanges too.
  const cleanups: (() => void)[] = [];
  for (const service of services) {
    const cleanup = service.definition.observe?.({
      watch: (name, listener) => supervisor.store.watch(name, listener),
      print: (line) => stdout.write(`${line}\n`),
      log: logger.child({ service: service.name, role: 'observer' }),
    });
    if (cleanup) cleanups.push(cleanup);
  }

  const started = Date.now();
  await supervisor.start();
  const status = supervisor.status();
  logger.info(
    { ms: Date.now() - started, workers: status.workers.filter((w) => w.state === 'ready').length, brokers: broker.brokers },
    `supervisor ready: ${status.services.map((s) => `${s.name} ${s.health}`).join(', ')}`,
  );
  const code = await stopped;
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch (error) {
      logger.warn({ err: describeError(error) }, 'observer cleanup failed');
    }
  }
  await admin.close();
  // Shared-state persistence, shutdown: the workers drained; wait for the last acknowledgements, then disconnect.
  const persisted = await persistence.close(config.supervisor.drainTimeoutMs).then(
    () => true,
    (error: unknown) => (logger.error({ err: describeError(error) }, 'persisted shared state: the last changes may not be in the changelog'), false),
  );
  supervisor.store.close();
  await broker.release();
  return persisted ? code : Math.max(code, 1);
}

export const startCommand: Command = { name: 'start', summary: 'run a supervisor with the configured services (the demo by default)', run };
