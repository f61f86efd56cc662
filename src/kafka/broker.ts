import { join } from 'node:path';
import { BrokerUnavailableError, ConfigError, PrerequisiteError } from '../errors.js';
import type { Logger } from '../log.js';
import { stateHome } from '../paths.js';
import { isDockerReachable } from './docker.js';
import { startLocalCluster, stopLocalCluster } from './local/cluster.js';

/**
 * Broker resolution, the one function tests, `npm start` and every script use:
 * 1. KAFKA_BROKERS set → that cluster;
 * 2. a Docker engine answers → testcontainers' KafkaContainer (KRaft);
 * 3. otherwise → the local broker (Apache Kafka jars from Maven, see src/kafka/local).
 */
export type BrokerSource = 'env' | 'testcontainers' | 'local';

export interface ResolvedBroker {
  source: BrokerSource;
  brokers: string[];
  /** Stops what resolution started (nothing for `env`, or a local broker it reused). */
  release(): Promise<void>;
}

export interface LocalBrokerSettings {
  /** Cluster folder; default `.wharf/kafka/cluster`, the one `npm run kafka` manages. */
  dir?: string;
  brokers?: 1 | 3;
  /** First port; 0 picks free ones. */
  port?: number;
  /** Stop a local broker this call started when released (tests); default keep it running. */
  stopOnRelease?: boolean;
}

export interface StartedBroker {
  brokers: string[];
  started: boolean;
  stop(): Promise<void>;
}

/** The three ways to a broker, replaceable for unit tests of the choice itself. */
export interface BrokerProbes {
  dockerReachable(env: NodeJS.ProcessEnv): Promise<boolean>;
  startContainer(logger: Logger): Promise<StartedBroker>;
  startLocal(settings: LocalBrokerSettings, logger: Logger, env: NodeJS.ProcessEnv): Promise<StartedBroker>;
}

export interface ResolveOptions {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  local?: LocalBrokerSettings;
  probes?: Partial<BrokerProbes>;
}

const WAYS_OUT =
  'Set KAFKA_BROKERS=host:port to use a running cluster, start a Docker engine (testcontainers), ' +
  'or install Java 17+ and Maven for the local broker.';

/** `KAFKA_BROKERS` as a list of host:port, or undefined when unset. */
export function parseBrokerList(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const brokers = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const broker of brokers) {
    const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(broker);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65_535) {
      throw new ConfigError(`KAFKA_BROKERS entry "${broker}" is not host:port (e.g. 127.0.0.1:9092).`, {
        context: { field: 'KAFKA_BROKERS' },
      });
    }
  }
  return brokers;
}

export function localClusterDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateHome(env), 'kafka', 'cluster');
}

export function jarCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateHome(env), 'kafka', 'jars');
}

export const defaultProbes: BrokerProbes = {
  dockerReachable: (env) => isDockerReachable(env),
  async startContainer(logger) {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    logger.info('starting Kafka in a container (testcontainers, KRaft)…');
    const container = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
    return {
      brokers: [`${container.getHost()}:${container.getMappedPort(9093)}`],
      started: true,
      stop: async () => void (await container.stop()),
    };
  },
  async startLocal(settings, logger, env) {
    const dir = settings.dir ?? localClusterDir(env);
    const { status, alreadyRunning } = await startLocalCluster({
      dir,
      cacheDir: jarCacheDir(env),
      brokers: settings.brokers ?? 1,
      port: settings.port,
      logger,
      env,
    });
    return {
      brokers: status.bootstrap.split(','),
      started: !alreadyRunning,
      stop: async () => void (await stopLocalCluster({ dir, logger })),
    };
  },
};

export async function resolveBroker({ logger, env = process.env, local = {}, probes = {} }: ResolveOptions): Promise<ResolvedBroker> {
  const { dockerReachable, startContainer, startLocal } = { ...defaultProbes, ...probes };
  const log = logger.child({ component: 'broker' });

  const fromEnv = parseBrokerList(env.KAFKA_BROKERS);
  if (fromEnv) {
    log.info({ source: 'env', brokers: fromEnv }, `using KAFKA_BROKERS=${fromEnv.join(',')}`);
    return { source: 'env', brokers: fromEnv, release: async () => undefined };
  }

  if (await dockerReachable(env)) {
    const container = await startContainer(log);
    log.info({ source: 'testcontainers', brokers: container.brokers }, `using a Kafka container at ${container.brokers.join(',')}`);
    return { source: 'testcontainers', brokers: container.brokers, release: container.stop };
  }

  let broker: StartedBroker;
  try {
    broker = await startLocal(local, log, env);
  } catch (error) {
    if (error instanceof PrerequisiteError) {
      throw new BrokerUnavailableError(
        `No Kafka broker: KAFKA_BROKERS is not set, no Docker engine answers, and the local broker cannot start (${error.message}) ${WAYS_OUT}`,
        { cause: error },
      );
    }
    throw error;
  }
  log.info(
    { source: 'local', brokers: broker.brokers, started: broker.started },
    `using the local Kafka broker at ${broker.brokers.join(',')}${broker.started ? '' : ' (already running)'}`,
  );
  const stopOnRelease = local.stopOnRelease === true && broker.started;
  return { source: 'local', brokers: broker.brokers, release: stopOnRelease ? broker.stop : async () => undefined };
}
