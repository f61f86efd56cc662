import { getHeapStatistics } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { DELIVERY_DEFAULTS } from '../delivery.js';
import { WharfError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { resolveCodec } from '../kafka/codec.js';
import { createConsumerRunner, type ConsumerRunner } from '../kafka/consumer-runner.js';
import { createRequester, replyTopicFor } from '../kafka/request-reply.js';
import { createSender } from '../kafka/sender.js';
import { createLogger, type Logger } from '../log.js';
import { createWorkerPoolRunner } from '../pool/pool-runner.js';
import type { DeliveryCounters, PoolHealth, SupervisorToWorker, WorkerData, WorkerToSupervisor } from '../protocol.js';
import { REQUEST_TIMEOUT_MS, type DefinedService } from '../service.js';
import { createStateClient } from '../state/client.js';
import { createThreadMetrics } from '../thread-metrics.js';
import type { Role } from '../status.js';
import { awaited, roleContext, runHandler, startHandler } from './context.js';
import { resolveTracer } from '../tracing.js';
import { loadTracingModule, shutdownTracing } from './tracing-module.js';
import { startProducerLoop } from './producer-loop.js';

/** How long a failing worker may take to leave its consumer group before it exits anyway. */
const ABANDON_TIMEOUT_MS = 3_000;

/** The shared map where every worker publishes its DeliveryCounters, keyed by worker id. */
export const DELIVERY_STATE = 'wharf.delivery';

/**
 * The worker-thread side of the supervisor handshake: set up, post `ready`, heartbeat from the
 * event loop, and on `drain` finish in-flight work, close everything and post `drained`.
 * The entries in workers/ only call this.
 */
export async function runWorker(role: Role): Promise<void> {
  const port = parentPort;
  if (!port) throw new WharfError('ERR_NOT_A_WORKER', `workers/${role} runs as a worker thread started by the supervisor, not directly.`);
  const data = workerData as WorkerData;
  const post = (message: WorkerToSupervisor) => port.postMessage(message);
  const logger: Logger = createLogger({ level: data.logLevel as 'info', pretty: data.pretty }).child({
    service: data.service,
    role,
    workerId: data.workerId,
  });
  // Counted in plain numbers here, shipped with each heartbeat, merged by the supervisor (`/metrics`).
  const metrics = data.metrics === false ? undefined : createThreadMetrics();
  const state = createStateClient(data.statePort, { metrics });
  const shutdownTraces = await loadTracingModule(data.tracingModule, {
    service: data.service,
    role,
    workerId: data.workerId,
    thread: 'worker',
  });
  const definition = ((await import(pathToFileURL(data.modulePath).href)) as { default: DefinedService }).default;
  if (resolveTracer()) logger.debug('tracing: an OpenTelemetry tracer provider is registered');
  const codec = resolveCodec(definition.codec);
  const kafka = createKafka({ brokers: data.brokers, logger, clientId: `${data.kafka.clientId}-${data.workerId}` });
  const sender = createSender(kafka, { codec, metrics });
  await sender.connect();
  const requester = createRequester({
    kafka,
    sender,
    logger,
    replyTopic: replyTopicFor(data.kafka.clientId, data.workerId),
    sessionTimeoutMs: data.kafka.sessionTimeoutMs,
    defaultTimeoutMs: definition.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
  });
  const base = roleContext({ data, role, logger, state, sender, requester });

  let runner: ConsumerRunner | undefined;
  const counters = { handled: () => 0, errors: () => 0 };
  const delivery = (): DeliveryCounters => {
    const c = runner?.stats;
    const r = requester.stats;
    return {
      handled: c?.handled ?? 0,
      errors: c?.errors ?? 0,
      retries: c?.retries ?? 0,
      deadLettered: c?.deadLettered ?? 0,
      rejected: c?.rejected ?? 0,
      inFlight: c?.inFlight ?? 0,
      maxInFlightSeen: c?.maxInFlightSeen ?? 0,
      pausedPartitions: c?.pausedPartitions ?? 0,
      commits: c?.commits ?? 0,
      commitFailures: c?.commitFailures ?? 0,
      rebalances: c?.rebalances ?? 0,
      requests: r.requests,
      replies: r.replies,
      timeouts: r.timeouts,
      lateReplies: r.lateReplies,
      duplicateReplies: r.duplicateReplies,
      unknownReplies: r.unknownReplies,
      pendingRequests: r.pending,
    };
  };
  let poolHealth: (() => PoolHealth) | undefined;
  const snapshot = () => ({
    handled: counters.handled(),
    errors: counters.errors(),
    heapUsedBytes: getHeapStatistics().used_heap_size,
    delivery: delivery(),
    ...(metrics ? { metrics: metrics.snapshot() } : {}),
    ...(poolHealth ? { pool: poolHealth() } : {}),
  });
  // Published where operators and tests can read them (`npm run admin -- state wharf.delivery`),
  // only when they changed: an idle worker costs no state traffic.
  let published = '';
  const publish = async () => {
    const current = delivery();
    const text = JSON.stringify(current);
    if (text === published) return;
    published = text;
    await state
      .map(DELIVERY_STATE)
      .set(data.workerId, { ...current, at: new Date().toISOString() })
      .catch(() => undefined);
  };
  const heartbeat = setInterval(() => {
    post({ type: 'heartbeat', at: Date.now(), ...snapshot() });
    void publish();
  }, data.heartbeatIntervalMs);

  const fatal = (error: Error) => {
    post({ type: 'fatal', error: { name: error.name, message: error.message, code: (error as WharfError).code } });
    // Exiting lets the supervisor replace this worker; nothing uncommitted is lost.
    process.exit(1);
  };
  // An uncaught error (a throw in a timer, a rejection nobody handled) ends this worker too. First
  // it leaves its consumer group, committing what is finished: otherwise the replacement's join
  // waits until the broker expires this member, a session timeout later.
  let failing = false;
  process.on('uncaughtException', (error) => {
    if (failing) return;
    failing = true;
    logger.error({ err: error }, 'uncaught error: leaving the consumer group, then exiting');
    setTimeout(() => fatal(error), ABANDON_TIMEOUT_MS);
    void (runner?.abandon() ?? Promise.resolve()).catch(() => undefined).finally(() => fatal(error));
  });

  let stopRole: () => Promise<void>;
  if (role === 'consumer') {
    const consumes = data.consumes!;
    // `consumes.concurrency`: the handler runs in a thread pool (src/pool/), this thread only fetches and commits.
    const group = {
      kafka,
      groupId: consumes.groupId,
      topics: consumes.topics,
      fromBeginning: consumes.fromBeginning,
      sessionTimeoutMs: data.kafka.sessionTimeoutMs,
      logger,
      sender,
      delivery: consumes.delivery,
      onFatal: fatal,
      metrics,
    };
    const pool = consumes.delivery?.concurrency ? createWorkerPoolRunner({ ...group, data, requester, parent: port }) : undefined;
    poolHealth = pool?.health;
    const consumer =
      pool ??
      createConsumerRunner({
        ...group,
        codec,
        schema: definition.schema,
        // Pipelined (the default), the lane starts the partition's next message while this one's sends are under way.
        handle:
          (consumes.delivery?.pipelineSends ?? DELIVERY_DEFAULTS.pipelineSends)
            ? (message) => startHandler(definition.handler!, base, message, consumes.groupId)
            : (message) => awaited(runHandler(definition.handler!, base, message, consumes.groupId)),
      });
    runner = consumer;
    await consumer.start();
    counters.handled = () => consumer.stats.handled;
    counters.errors = () => consumer.stats.errors;
    stopRole = () => consumer.drain();
  } else {
    const loop = startProducerLoop({ base, role: definition.producer!, rate: data.rate, logger });
    counters.handled = () => loop.stats.ticks;
    counters.errors = () => loop.stats.errors;
    stopRole = () => loop.stop();
  }

  const drain = async (): Promise<void> => {
    try {
      await stopRole();
      await requester.close();
      await publish();
      await sender.disconnect();
      await shutdownTracing(shutdownTraces);
    } catch (error) {
      logger.warn({ err: error }, 'worker did not drain cleanly');
    } finally {
      clearInterval(heartbeat);
      state.close();
      post({ type: 'drained', ...snapshot() });
    }
  };
  port.on('message', (message: SupervisorToWorker) => {
    if (message.type === 'drain') void drain();
  });
  post({ type: 'ready' });
}
