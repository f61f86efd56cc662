import { pathToFileURL } from 'node:url';
import { MessageChannel, parentPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import type { KafkaMessage } from 'kafkajs';
import { WharfError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { HEADERS, resolveCodec } from '../kafka/codec.js';
import { createInboundDecoder } from '../kafka/inbound.js';
import { validateMessage } from '../kafka/message-schema.js';
import { createSender, type Sender } from '../kafka/sender.js';
import { createLogger, type Logger } from '../log.js';
import type { DefinedService, RequestOptions } from '../service.js';
import { createStateClient } from '../state/client.js';
import { resolveTracer } from '../tracing.js';
import { roleContext, runHandler } from './context.js';
import { loadTracingModule, shutdownTracing } from './tracing-module.js';
import {
  HELLO,
  Progress,
  reviveError,
  serializeError,
  type Hello,
  type OwnerToThread,
  type PoolThreadData,
  type TaskInput,
  type TaskResult,
  type ThreadToOwner,
} from '../pool/messages.js';

/**
 * The pool thread's side (workers/pool-task.ts is its entry): announce itself, wait for a state
 * port of its own, load the service, and then run each task's messages, one after another, with
 * the same `ctx` a consumer worker's handler gets. Errors are returned, not thrown, so `code` and `retriable`
 * survive the trip back; a thread that dies mid-task shows up as piscina rejecting the task.
 */
export type RunTask = (inputs: TaskInput[]) => Promise<TaskResult[]>;

const buffer = (bytes: Uint8Array | null) => (bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : null);

/** Connects on the first send, so a handler that never sends costs no producer. */
function lazySender(sender: Sender): Sender {
  let connecting: Promise<void> | undefined;
  const connect = () =>
    (connecting ??= sender.connect().catch((error: unknown) => {
      connecting = undefined; // the next send tries again
      throw error;
    }));
  return {
    connect,
    async send(topic, value, options) {
      await connect();
      return sender.send(topic, value, options);
    },
    async sendRaw(topic, message) {
      await connect();
      return sender.sendRaw(topic, message);
    },
    async disconnect() {
      if (connecting)
        await connecting.then(
          () => sender.disconnect(),
          () => undefined,
        );
    },
    get sent() {
      return sender.sent;
    },
  };
}

/** ctx.request, run by the owner's requester (one reply topic per worker, not per thread). */
function relayedRequester(control: MessagePort) {
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  return {
    settle(message: Extract<OwnerToThread, { type: 'reply' }>) {
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.value);
      else waiter?.reject(reviveError(message.error));
    },
    async request<R>(topic: string, value: unknown, options: RequestOptions<R> = {}): Promise<R> {
      const { timeoutMs, key, headers, codec, schema } = options;
      if (codec !== undefined && typeof codec !== 'string') {
        throw new WharfError(
          'ERR_POOL_UNSUPPORTED',
          'In a pool thread, ctx.request takes a codec by name ("json", "raw"): a codec object cannot cross threads.',
        );
      }
      const id = nextId++;
      const reply = new Promise<unknown>((resolve, reject) => pending.set(id, { resolve, reject }));
      control.postMessage({ type: 'request', id, topic, value, options: { timeoutMs, key, headers, codec } } satisfies ThreadToOwner);
      const answer = await reply;
      return schema ? validateMessage(schema, answer, 'reply') : (answer as R);
    },
  };
}

export async function startPoolThread(): Promise<RunTask> {
  if (!parentPort)
    throw new WharfError('ERR_NOT_A_WORKER', 'workers/pool-task runs in the thread pool of a consumer worker, not directly.');
  const data = workerData as PoolThreadData;
  const { port1: control, port2 } = new MessageChannel();
  const post = (message: ThreadToOwner) => control.postMessage(message);
  const requester = relayedRequester(control);
  let onInit!: (message: Extract<OwnerToThread, { type: 'init' }>) => void;
  const initialised = new Promise<Extract<OwnerToThread, { type: 'init' }>>((resolve) => (onInit = resolve));
  let close: () => Promise<void> = async () => undefined;
  control.on('message', (message: OwnerToThread) => {
    if (message.type === 'init') onInit(message);
    else if (message.type === 'reply') requester.settle(message);
    else void close().finally(() => post({ type: 'closed' }));
  });
  parentPort.postMessage({ type: HELLO, threadId, control: port2 } satisfies Hello, [port2]);

  try {
    const { statePort, holderId } = await initialised;
    const logger: Logger = createLogger({ level: data.logLevel as 'info', pretty: data.pretty }).child({
      service: data.service,
      role: 'consumer',
      workerId: data.workerId,
      poolThread: threadId,
    });
    const state = createStateClient(statePort, { logger });
    const shutdownTraces = await loadTracingModule(data.tracingModule, {
      service: data.service,
      role: 'consumer',
      workerId: data.workerId,
      thread: 'pool',
    });
    const definition = ((await import(pathToFileURL(data.modulePath).href)) as { default: DefinedService }).default;
    resolveTracer();
    const codec = resolveCodec(definition.codec);
    const kafka = createKafka({ brokers: data.brokers, logger, clientId: `${data.clientId}-${data.workerId}-pool-${threadId}` });
    const sender = lazySender(createSender(kafka, { codec }));
    const decode = createInboundDecoder({ codec, schema: definition.schema, maxMessageBytes: data.maxMessageBytes });
    const base = roleContext({ data, role: 'consumer', logger, state, sender, requester });
    close = async () => {
      await sender.disconnect().catch((error: unknown) => logger.warn({ err: error }, 'pool thread producer did not disconnect cleanly'));
      state.close();
      await shutdownTracing(shutdownTraces).catch((error: unknown) =>
        logger.warn({ err: error }, 'the tracing module did not shut down cleanly'),
      );
    };
    logger.debug({ holderId }, 'pool thread ready');
    post({ type: 'ready' });

    // A thread holds more than one task (thread-pool.ts): their messages run one at a time, in order.
    let previous: Promise<unknown> = Promise.resolve();
    return function runTask(inputs) {
      const run = previous.then(async () => {
        const results: TaskResult[] = [];
        for (const input of inputs) {
          // The owner may have withdrawn it (thread-pool.ts); from here on it is this thread's to run.
          if (Atomics.compareExchange(data.progress, input.slot, Progress.Waiting, Progress.Running) !== Progress.Waiting) {
            results.push({ ok: false, withdrawn: true, busyMs: 0 });
            continue;
          }
          const result = await runOne(input);
          Atomics.store(data.progress, input.slot, result.ok ? Progress.Succeeded : Progress.Ended);
          results.push(result);
        }
        return results;
      });
      previous = run.catch(() => undefined);
      return run;
    };

    async function runOne(input: TaskInput): Promise<TaskResult> {
      const started = performance.now();
      const busyMs = () => performance.now() - started;
      const raw = {
        key: buffer(input.key),
        value: buffer(input.value),
        headers: input.headers,
        offset: input.offset,
        timestamp: input.timestamp,
      } as KafkaMessage;
      let inbound;
      try {
        inbound = await decode(input.topic, input.partition, raw);
      } catch (error) {
        return { ok: false, rejected: true, busyMs: busyMs(), error: serializeError(error) };
      }
      const message = { ...inbound, headers: { ...inbound.headers, [HEADERS.attempt]: String(input.attempt) } };
      try {
        await runHandler(definition.handler!, base, message, data.groupId);
        return { ok: true, busyMs: busyMs() };
      } catch (error) {
        return { ok: false, rejected: false, busyMs: busyMs(), error: serializeError(error) };
      }
    }
  } catch (error) {
    post({ type: 'failed', error: serializeError(error) });
    throw error;
  }
}
