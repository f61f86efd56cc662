import { dlqAdminMethods } from '../admin/dead-letter.js';
import { lagAdminMethods } from '../admin/lag.js';
import type { AdminApi } from '../admin/api.js';
import { adminMethods, startAdminServer, type AdminServer, type AdminServerOptions } from '../admin/server.js';
import type { WharfConfig } from '../config/schema.js';
import { loadServices, type LoadedService } from '../config/services.js';
import { ConfigError, describeError, WharfError } from '../errors.js';
import { parseHttpAddress, type HttpAddress } from '../http/address.js';
import { startHttpListener, type HttpListener } from '../http/server.js';
import { resolveBroker, type BrokerSource, type ResolvedBroker, type ResolveOptions } from '../kafka/broker.js';
import { createLogger, type Logger } from '../log.js';
import { mountDashboard } from '../dashboard/dashboard.js';
import { lagFamilies, startLagMonitor, type LagMonitorOptions } from '../metrics/lag-monitor.js';
import { createMetricsRegistry } from '../metrics/registry.js';
import { stateHome } from '../paths.js';
import { clusterStateApi, openSharedState } from '../cluster/open.js';
import { persistSettings, type StatePersistence } from '../persist/open.js';
import type { StateStore } from '../state/store.js';
import { createSupervisor, type StopResult, type Supervisor } from '../supervisor/supervisor.js';
import { startObservers } from './observers.js';
import { createReleasers } from './releasers.js';

/**
 * The one assembly of a running wharf: what `npm start` runs, what tests start, what a library
 * user calls. Steps, in order: resolve a broker, restore the shared state (persistence), open the
 * admin socket (with the dead-letter methods), start the observers, start the supervisor. Each
 * registers how to release what it started; a failure at any step releases what the earlier ones
 * started, in reverse, and rethrows.
 */
export interface WharfOptions {
  /** The config, loaded and checked (`loadConfig`, `parseConfig`). */
  config: WharfConfig;
  /** Its services, loaded (`loadServices(config)`); loaded here when left out. */
  services?: LoadedService[];
  logger?: Logger;
  /** KAFKA_BROKERS, WHARF_HOME, WHARF_AUTHKEY, WHARF_STATE_PERSIST, WHARF_STATE_TOPIC; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Brokers to use as given (nothing is released); default: resolveBroker (KAFKA_BROKERS, else Docker, else the local broker). */
  brokers?: string[];
  /** How a broker is found when `brokers` is not given; default resolveBroker. What it returns is released at stop, or when the start fails. */
  resolveBroker?: (options: ResolveOptions) => Promise<ResolvedBroker>;
  /** The admin socket; its connection file goes in `dir` (default: stateHome(env), `.wharf/` here). `false`: no admin socket. */
  admin?: false | Partial<Pick<AdminServerOptions, 'dir' | 'transport' | 'port' | 'host' | 'authkey' | 'limits'>>;
  /** The HTTP listener (`/metrics`); default the config's `http` (127.0.0.1:9464 unless set). `false`: none. */
  http?: false | HttpAddress;
  /** How consumer lag is sampled (`admin lag`, `/metrics`): every `intervalMs` (10 s), `samples` (10) to a window. */
  lag?: Pick<LagMonitorOptions, 'intervalMs' | 'samples' | 'stopAfterMs'>;
  /** Where observers' lines for people go; default stdout. */
  print?: (line: string) => void;
  /** Pretty logs in workers (a terminal). */
  pretty?: boolean;
  /** Aborting it during the start gives the start up: workers started so far drain, the rest is released, and startWharf rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Aborting it ends every worker thread at once (a second Ctrl-C), during the start or a stop. */
  terminateSignal?: AbortSignal;
}

export interface WharfStopResult extends StopResult {
  /** False when persisted changes may be missing from the changelog (not acknowledged in time). */
  persisted: boolean;
  /** Steps whose release failed (logged). */
  failed: string[];
}

export interface Wharf {
  readonly supervisor: Supervisor;
  readonly store: StateStore;
  readonly brokers: string[];
  readonly brokerSource: BrokerSource | 'given';
  /** Null with `admin: false`. */
  readonly admin: AdminServer | null;
  /** The HTTP listener (`/metrics`; `route()` adds more); null when off. */
  readonly http: HttpListener | null;
  readonly restored: StatePersistence['restored'];
  /**
   * Drains every worker within `supervisor.drainTimeoutMs`, then releases the rest in reverse:
   * observers, the admin socket, persistence (after its last acknowledgements), the store, the
   * broker. Calling it again returns the same promise.
   */
  stop(): Promise<WharfStopResult>;
  /** Ends every worker thread now, then releases the rest as stop() does. */
  terminate(): Promise<WharfStopResult>;
}

export async function startWharf(options: WharfOptions): Promise<Wharf> {
  const { config, env = process.env, signal, terminateSignal } = options;
  const logger = options.logger ?? createLogger({ fd: 1 });
  const print = options.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const releasers = createReleasers(logger);
  let drained: StopResult = { ok: true, unfinished: [] };
  let persisted = true;
  let supervisor: Supervisor | undefined;

  const onTerminate = () => void supervisor?.terminateAll();
  terminateSignal?.addEventListener('abort', onTerminate, { once: true });
  releasers.add('the terminate signal', () => terminateSignal?.removeEventListener('abort', onTerminate));
  const checkAborted = () => {
    if (signal?.aborted) throw new WharfError('ERR_ABORTED', 'The start was interrupted (a signal): what had started was released.');
  };

  try {
    const services = options.services ?? (await loadServices(config));
    // Checked with the rest of the config, before any broker.
    const persist = persistSettings(config, env);
    checkAborted();

    let brokers: string[];
    let brokerSource: Wharf['brokerSource'];
    if (options.brokers) {
      brokers = options.brokers;
      brokerSource = 'given';
    } else {
      const broker = await (options.resolveBroker ?? resolveBroker)({ logger, env });
      releasers.add('the broker', () => broker.release());
      brokers = broker.brokers;
      brokerSource = broker.source;
    }
    checkAborted();

    // Persisted objects belong to the deployment (every supervisor of one cluster name, src/cluster/):
    // joined once the admin socket can be advertised, and served before any worker exists.
    const shared = openSharedState({
      settings: persist,
      clusterName: env.WHARF_CLUSTER_NAME?.trim() || config.cluster.name,
      brokers,
      logger,
      clientId: config.kafka.clientId,
      sessionTimeoutMs: config.kafka.sessionTimeoutMs,
      env,
    });
    const { store } = shared;
    releasers.add('the state store', () => store.close());
    releasers.add('the deployment', () =>
      shared.close(config.supervisor.drainTimeoutMs).catch((error: unknown) => {
        persisted = false;
        logger.error({ err: describeError(error) }, 'persisted shared state: the last changes may not be in the changelog');
      }),
    );
    checkAborted();

    const wantedHttp = options.http === undefined ? config.http : options.http && { ...options.http, explicit: true };
    // Without a listener nobody reads the workers' counts: they do not count.
    const sup = createSupervisor({
      config,
      services,
      brokers,
      logger,
      pretty: options.pretty ?? false,
      store,
      metrics: Boolean(wantedHttp),
    });
    supervisor = sup;

    // Consumer lag of every group the deployment consumes, read from Kafka (`admin lag`, `/metrics`).
    const lag = startLagMonitor({
      brokers,
      clientId: config.kafka.clientId,
      groups: services.flatMap((s) => (s.consumes ? [{ group: s.consumes.groupId, topics: s.consumes.topics }] : [])),
      logger,
      ...options.lag,
    });
    releasers.add('the lag monitor', () => lag.stop());

    // Before the admin socket, whose connection file names it.
    let http: HttpListener | null = null;
    if (wantedHttp) {
      const listener = await startHttpListener({ ...wantedHttp, logger, fallbackToFreePort: !wantedHttp.explicit });
      http = listener;
      releasers.add('the HTTP listener', () => listener.close());
      const metrics = createMetricsRegistry({
        services: () => sup.status().services,
        workers: () => sup.metrics(),
        extra: () => lagFamilies(lag.latest()),
      });
      listener.route('GET', '/metrics', async (_request, response) => {
        const text = await metrics.text();
        response.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
        response.end(text);
      });
      logger.info({ http: listener.url }, `HTTP listening: ${listener.url}/metrics`);
    }
    checkAborted();

    // Before any worker: a second supervisor in this folder fails here, and operators can watch start-up.
    let admin: AdminServer | null = null;
    if (options.admin !== false) {
      const api: AdminApi = {
        state: clusterStateApi(shared),
        status: () => sup.status(),
        scale: (service, consumers) => sup.scale(service, consumers),
        // Dead letters: `npm run admin -- dlq list|show|replay` (src/admin/dead-letter.ts).
        extra: {
          ...dlqAdminMethods({
            brokers,
            clientId: config.kafka.clientId,
            topics: services.flatMap((s) => s.consumes?.topics ?? []),
            state: store.local,
            logger,
          }),
          // `cluster.call` (a member's routed call) and `cluster.status` (npm run admin -- cluster).
          ...shared.deployment?.adminMethods(),
          // `npm run admin -- lag`: the consumer-lag report /metrics shows too.
          ...lagAdminMethods(lag),
        },
      };
      const server = await startAdminServer({
        api,
        // WHARF_ADMIN_LISTEN=HOST:PORT: on TCP, where another host's members of the deployment reach it.
        ...adminListen(env, config.cluster.listen),
        ...options.admin,
        dir: options.admin?.dir ?? stateHome(env),
        env,
        logger,
        ...(http ? { http: http.address } : {}),
      });
      admin = server;
      releasers.add('the admin socket', () => server.close());
      logger.info({ address: server.address }, 'admin socket open: `npm run admin -- workers` from this folder');
      // The dashboard: the admin socket's methods over HTTP, behind a login with the socket's key.
      if (http) {
        const dashboard = mountDashboard({
          listener: http,
          authkey: server.authkey,
          methods: adminMethods(api),
          watch: api.state.watch,
          workers: () => sup.metrics(),
          lag: () => lag.latest(),
          logger,
        });
        releasers.add('the dashboard', () => dashboard.close());
        print(`dashboard: ${dashboard.loginUrl()}  (one-time login, valid 1 h; \`npm run admin -- dashboard\` prints another)`);
      }
    }
    checkAborted();

    // The deployment's shared state: restored here when this supervisor owns it, else found on the
    // member that does. Other members reach this one at its admin socket (or cluster.advertise).
    const advertise = env.WHARF_CLUSTER_ADVERTISE?.trim() || config.cluster.advertise;
    await shared.join(
      advertise
        ? { address: advertise }
        : { address: admin?.address ?? '', ...(admin && admin.keyFile !== 'env' ? { keyFile: admin.keyFile } : {}) },
    );
    checkAborted();

    // Observers before the workers, so they see the first exchanges too.
    releasers.add('observers', startObservers(services, store, print, logger));
    checkAborted();

    releasers.add('the supervisor', async () => {
      drained = await sup.stop();
    });
    const started = Date.now();
    const starting = sup.start();
    if (signal) {
      const aborted = new Promise<void>((resolve) =>
        signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      // The start is given up when the signal comes first; a later rejection of it must not go unhandled.
      starting.catch(() => undefined);
      await Promise.race([starting, aborted]);
      checkAborted();
    } else {
      await starting;
    }
    const status = sup.status();
    logger.info(
      { ms: Date.now() - started, workers: status.workers.filter((w) => w.state === 'ready').length, brokers },
      `supervisor ready: ${status.services.map((s) => `${s.name} ${s.health}`).join(', ')}`,
    );

    let stopping: Promise<WharfStopResult> | undefined;
    const stop = () => (stopping ??= releasers.releaseAll().then((failed) => ({ ...drained, persisted, failed })));
    return {
      supervisor: sup,
      store,
      brokers,
      brokerSource,
      admin,
      http,
      get restored() {
        return shared.restored();
      },
      stop,
      async terminate() {
        await sup.terminateAll();
        return stop();
      },
    };
  } catch (error) {
    await releasers.releaseAll();
    if (error instanceof WharfError && error.code === 'ERR_ABORTED')
      Object.assign(error.context, { drained: drained.ok, unfinished: drained.unfinished, persisted });
    throw error;
  }
}

/** The admin socket on TCP when WHARF_ADMIN_LISTEN (or cluster.listen) says HOST:PORT (port 0 picks one); else the default Unix socket. */
function adminListen(env: NodeJS.ProcessEnv, configured?: string): Pick<AdminServerOptions, 'transport' | 'host' | 'port'> {
  const listen = env.WHARF_ADMIN_LISTEN?.trim() || configured?.trim();
  if (!listen) return {};
  // The one HOST:PORT rule (the HTTP listener's); `off` means nothing here.
  const address = parseHttpAddress(listen);
  if (!address) {
    throw new ConfigError(
      `WHARF_ADMIN_LISTEN must be HOST:PORT (like 0.0.0.0:7070, or 127.0.0.1:0 for any free port); got ${JSON.stringify(listen)}.`,
      {
        context: { field: 'WHARF_ADMIN_LISTEN' },
      },
    );
  }
  return { transport: 'tcp', host: address.host, port: address.port };
}
