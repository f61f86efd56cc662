import { getHeapStatistics } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createConsumerRunner } from '../kafka/consumer-runner.js';
import { createSender } from '../kafka/sender.js';
import { createLogger, type Logger } from '../log.js';
import type { SupervisorToWorker, WorkerData, WorkerToSupervisor } from '../protocol.js';
import type { DefinedService } from '../service.js';
import { createStateClient } from '../state/client.js';
import type { Role } from '../supervisor/status.js';
import { messageContext, roleContext } from './context.js';
import { startProducerLoop } from './producer-loop.js';

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
  const counters = { handled: 0, errors: 0 };
  const snapshot = () => ({ ...counters, heapUsedBytes: getHeapStatistics().used_heap_size });
  const heartbeat = setInterval(() => post({ type: 'heartbeat', at: Date.now(), ...snapshot() }), data.heartbeatIntervalMs);

  const state = createStateClient(data.statePort);
  const kafka = createKafka({ brokers: data.brokers, logger, clientId: `${data.kafka.clientId}-${data.workerId}` });
  const sender = createSender(kafka);
  await sender.connect();
  const definition = ((await import(pathToFileURL(data.modulePath).href)) as { default: DefinedService }).default;
  const base = roleContext({ data, role, logger, state, sender });

  const fatal = (error: Error) => {
    post({ type: 'fatal', error: { name: error.name, message: error.message, code: (error as WharfError).code } });
    // Exiting lets the supervisor replace this worker; nothing uncommitted is lost.
    process.exit(1);
  };

  let stopRole: () => Promise<void>;
  if (role === 'consumer') {
    const consumes = data.consumes!;
    const runner = createConsumerRunner({
      kafka,
      groupId: consumes.groupId,
      topics: consumes.topics,
      fromBeginning: consumes.fromBeginning,
      sessionTimeoutMs: data.kafka.sessionTimeoutMs,
      logger,
      sender,
      handle: async (message) => {
        await definition.handler!(message, messageContext(base, message));
      },
      onFatal: fatal,
    });
    await runner.start();
    Object.defineProperties(counters, {
      handled: { get: () => runner.stats.handled, enumerable: true },
      errors: { get: () => runner.stats.errors, enumerable: true },
    });
    stopRole = () => runner.drain();
  } else {
    const loop = startProducerLoop({ base, role: definition.producer!, rate: data.rate, logger });
    Object.defineProperties(counters, {
      handled: { get: () => loop.stats.ticks, enumerable: true },
      errors: { get: () => loop.stats.errors, enumerable: true },
    });
    stopRole = () => loop.stop();
  }

  port.on('message', async (message: SupervisorToWorker) => {
    if (message.type !== 'drain') return;
    try {
      await stopRole();
      await sender.disconnect();
    } finally {
      clearInterval(heartbeat);
      state.close();
      post({ type: 'drained', ...snapshot() });
    }
  });
  post({ type: 'ready' });
}
