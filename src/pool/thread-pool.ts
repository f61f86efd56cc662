import { resourceLimits as ownLimits, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { compiled } from '../paths.js';
import {
  isHello,
  reviveError,
  serializeError,
  type Hello,
  type OwnerToThread,
  type PoolThreadData,
  type RelayedRequestOptions,
  type TaskInput,
  type TaskResult,
  type ThreadToOwner,
} from './messages.js';

/**
 * The piscina pool of one consumer worker, and the per-thread setup piscina does not do: each
 * thread announces itself with a control port, gets its own shared-state port from the
 * supervisor through this worker, and says when it is ready (see messages.ts). A thread that
 * dies is replaced by piscina; the task it ran is rejected, which the dispatcher counts as a
 * failed attempt.
 */
export interface ThreadPoolOptions {
  threads: number;
  data: PoolThreadData;
  /** A state port of its own for a pool thread (src/protocol.ts `state-port:request`). */
  statePort(suffix: string): Promise<{ port: MessagePort; holderId: string }>;
  /** Runs a pool thread's `ctx.request` on this worker's requester. */
  request?(topic: string, value: unknown, options: RelayedRequestOptions): Promise<unknown>;
  logger: Logger;
  /** The pool cannot work (a thread could not set up): the worker should exit and be replaced. */
  onFatal(error: Error): void;
  /** The compiled task entry; tests can point elsewhere. */
  filename?: string;
}

export interface ThreadPoolHealth {
  /** Threads set up and taking tasks. */
  threads: number;
  /** Tasks handed to piscina that wait for a thread. */
  queued: number;
  /** Attempts run to the end (success or a thrown error). */
  completed: number;
  /** Time spent in handlers, all threads together. */
  busyMs: number;
  /** busy / (threads × wall time) over the last second, 0..1. */
  utilization: number;
  /** Threads that ended while the pool was running (each replaced by piscina). */
  threadExits: number;
}

export interface ThreadPool {
  /** Resolves once every thread is set up; rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  run(input: TaskInput): Promise<TaskResult>;
  health(): ThreadPoolHealth;
  /** Lets each thread close its producer and state connection, then ends the threads. */
  close(timeoutMs?: number): Promise<void>;
}

interface ThreadEntry {
  control: MessagePort;
  ready: boolean;
  closed?: () => void;
}

export function createThreadPool(options: ThreadPoolOptions): ThreadPool {
  const { threads, logger } = options;
  const piscina = new Piscina({
    filename: options.filename ?? compiled('workers/pool-task-entry.cjs'),
    minThreads: threads,
    maxThreads: threads,
    // Handlers use async I/O (state, sends), which piscina's Atomics.wait idle loop would freeze.
    useAtomics: false,
    workerData: options.data,
    ...(ownLimits.maxOldGenerationSizeMb ? { resourceLimits: ownLimits } : {}),
  });
  const live = new Map<number, ThreadEntry>();
  const readyWaiters = new Set<() => void>();
  let closing = false;
  let completed = 0;
  let busyMs = 0;
  let threadExits = 0;
  let utilization = 0;
  let sample = { at: performance.now(), busyMs: 0 };
  const sampler = setInterval(() => {
    const at = performance.now();
    utilization = Math.min(1, Math.max(0, (busyMs - sample.busyMs) / (threads * (at - sample.at))));
    sample = { at, busyMs };
  }, 1_000);
  sampler.unref();

  const readyCount = () => [...live.values()].filter((t) => t.ready).length;
  const post = (entry: ThreadEntry, message: OwnerToThread, transfer: MessagePort[] = []) => entry.control.postMessage(message, transfer);

  function onControl(threadId: number, entry: ThreadEntry, message: ThreadToOwner): void {
    switch (message.type) {
      case 'ready':
        entry.ready = true;
        if (readyCount() >= threads) for (const wake of readyWaiters) wake();
        break;
      case 'failed':
        options.onFatal(
          new WharfError('ERR_POOL_THREAD_START', `A pool thread of ${options.data.workerId} could not start: ${message.error.message}`, {
            cause: reviveError(message.error),
            context: { threadId },
          }),
        );
        break;
      case 'request': {
        const { id, topic, value } = message;
        const relay = options.request
          ? options.request(topic, value, message.options)
          : Promise.reject(new WharfError('ERR_POOL_UNSUPPORTED', 'ctx.request is not available in this pool.'));
        relay.then(
          (reply) => post(entry, { type: 'reply', id, ok: true, value: reply }),
          (error: unknown) => post(entry, { type: 'reply', id, ok: false, error: serializeError(error) }),
        );
        break;
      }
      case 'closed':
        entry.closed?.();
        break;
    }
  }

  function adopt({ threadId, control }: Hello): void {
    const entry: ThreadEntry = { control, ready: false };
    live.set(threadId, entry);
    control.on('message', (message: ThreadToOwner) => onControl(threadId, entry, message));
    // The control port closes when its thread ends, whatever the reason.
    control.on('close', () => {
      live.delete(threadId);
      entry.closed?.();
      if (closing) return;
      threadExits++;
      logger.warn({ threadId, threads: live.size }, 'pool thread ended; piscina replaces it');
    });
    control.unref();
    options.statePort(String(threadId)).then(
      ({ port, holderId }) => post(entry, { type: 'init', statePort: port, holderId }, [port]),
      (error: unknown) =>
        options.onFatal(
          new WharfError(
            'ERR_POOL_THREAD_START',
            `No state port for a pool thread of ${options.data.workerId}: ${(error as Error).message}`,
            { cause: error },
          ),
        ),
    );
  }

  piscina.on('message', (message: unknown) => {
    if (isHello(message)) adopt(message);
  });
  // A thread that fails between tasks: piscina replaces it; without a listener the error would be thrown.
  piscina.on('error', (error: Error) => logger.warn({ err: error }, 'pool thread failed outside a task'));

  return {
    ready(timeoutMs) {
      if (readyCount() >= threads) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          readyWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(() => {
          readyWaiters.delete(done);
          reject(
            new WharfError(
              'ERR_POOL_START',
              `Only ${readyCount()} of ${threads} pool threads of ${options.data.workerId} were ready within ${timeoutMs} ms.`,
              { retriable: true },
            ),
          );
        }, timeoutMs);
        readyWaiters.add(done);
      });
    },
    async run(input) {
      let result: TaskResult;
      try {
        result = (await piscina.run(input)) as TaskResult;
      } catch (error) {
        // piscina rejects the task of a thread that exited (process.exit, a crash, out of memory).
        throw new WharfError(
          'ERR_POOL_THREAD_EXITED',
          `The pool thread handling ${input.topic}/${input.partition}@${input.offset} ended: ${(error as Error).message}`,
          { cause: error, retriable: true },
        );
      }
      completed++;
      busyMs += result.busyMs;
      return result;
    },
    health: () => ({
      threads: readyCount(),
      queued: piscina.queueSize,
      completed,
      busyMs: Math.round(busyMs),
      utilization: Math.round(utilization * 1_000) / 1_000,
      threadExits,
    }),
    async close(timeoutMs = 5_000) {
      closing = true;
      clearInterval(sampler);
      const entries = [...live.values()];
      await Promise.race([
        Promise.all(
          entries.map(
            (entry) =>
              new Promise<void>((resolve) => {
                entry.closed = resolve;
                post(entry, { type: 'close' });
              }),
          ),
        ),
        new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
      await piscina.destroy();
    },
  };
}
