import { resourceLimits as ownLimits, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { compiled } from '../paths.js';
import {
  isHello,
  Progress,
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
 * Messages a pool thread holds at once: the one it runs and the ones waiting behind it, in up to
 * TASKS_PER_THREAD piscina tasks. A thread that finished a message goes on with the next without
 * waiting for the consumer thread, and a task's answer — one postMessage, one wake-up of the
 * consumer thread — covers all its messages (docs/performance.md, "The pool's batches").
 */
export const MESSAGES_PER_THREAD = 8;
const TASKS_PER_THREAD = 2;
const MESSAGES_PER_TASK = MESSAGES_PER_THREAD / TASKS_PER_THREAD;

/**
 * Times a message whose thread died before it ran (or with its answer) is handed on again
 * before that counts as a failed attempt: a bound, so no rejection can loop for ever.
 */
const MAX_REQUEUES = 8;

/**
 * The piscina pool of one consumer worker, and the per-thread setup piscina does not do: each
 * thread announces itself with a control port, gets its own shared-state port from the
 * supervisor through this worker, and says when it is ready (see messages.ts).
 *
 * `run` takes one message; the messages given in one turn of the event loop go to the threads
 * together, split over the free task places (TASKS_PER_THREAD per thread), and a thread runs a
 * task's messages one after another. A thread that dies is replaced by piscina, which rejects
 * every task the thread held; each message's `progress` slot says what became of it: the one
 * whose handler ran counts as a failed attempt (the dispatcher's retry), one that succeeded is
 * done, and the others — never started, or ended with an answer the thread took with it — are
 * handed on again without counting an attempt.
 */
export interface ThreadPoolOptions {
  threads: number;
  data: Omit<PoolThreadData, 'progress'>;
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
  /**
   * One attempt; more than `threads × MESSAGES_PER_THREAD` at once wait for a slot. Once `signal`
   * aborts, the attempt is withdrawn if no thread has begun it (the result says `withdrawn`).
   */
  run(input: Omit<TaskInput, 'slot'>, signal?: AbortSignal): Promise<TaskResult>;
  health(): ThreadPoolHealth;
  /** Lets each thread close its producer and state connection, then ends the threads. */
  close(timeoutMs?: number): Promise<void>;
}

interface Waiting {
  input: TaskInput;
  /** Times handed on after its thread died before it ran. */
  requeued: number;
  resolve(result: TaskResult): void;
  reject(error: Error): void;
}

interface ThreadEntry {
  control: MessagePort;
  ready: boolean;
  closed?: () => void;
}

export function createThreadPool(options: ThreadPoolOptions): ThreadPool {
  const { threads, logger } = options;
  const progress = new Int32Array(new SharedArrayBuffer(threads * MESSAGES_PER_THREAD * Int32Array.BYTES_PER_ELEMENT));
  const freeSlots = Array.from({ length: progress.length }, (_, i) => i);
  const slotWaiters: ((slot: number) => void)[] = [];
  /** Messages given to `run` and not yet in a task. */
  let pending: Waiting[] = [];
  let tasks = 0;
  let flushQueued = false;
  const piscina = new Piscina({
    filename: options.filename ?? compiled('workers/pool-task-entry.cjs'),
    minThreads: threads,
    maxThreads: threads,
    // Handlers use async I/O (state, sends), which piscina's Atomics.wait idle loop would freeze.
    useAtomics: false,
    concurrentTasksPerWorker: TASKS_PER_THREAD,
    workerData: { ...options.data, progress } satisfies PoolThreadData,
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

  function enqueue(input: Omit<TaskInput, 'slot'>, slot: number): Promise<TaskResult> {
    return new Promise<TaskResult>((resolve, reject) => {
      pending.push({ input: { ...input, slot }, requeued: 0, resolve, reject });
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flush); // after this turn, so its messages share tasks
      }
    });
  }

  /** Hands what waits to the free task places, split evenly over them, MESSAGES_PER_TASK at most in one. */
  function flush(): void {
    flushQueued = false;
    const places = threads * TASKS_PER_THREAD;
    let next = 0;
    while (next < pending.length && tasks < places) {
      const size = Math.min(MESSAGES_PER_TASK, Math.ceil((pending.length - next) / (places - tasks)));
      void submit(pending.slice(next, next + size));
      next += size;
    }
    pending = pending.slice(next);
  }

  async function submit(batch: Waiting[]): Promise<void> {
    tasks++;
    try {
      const results = (await piscina.run(batch.map((w) => w.input))) as TaskResult[];
      batch.forEach((waiting, i) => waiting.resolve(results[i]!));
    } catch (error) {
      // piscina rejects the tasks of a thread that exited (process.exit, a crash, out of memory).
      const again: Waiting[] = [];
      for (const waiting of batch) {
        const { topic, partition, offset, slot } = waiting.input;
        const where = Atomics.load(progress, slot);
        if (where === Progress.Succeeded) waiting.resolve({ ok: true, busyMs: 0 });
        else if (where === Progress.Withdrawn) waiting.resolve({ ok: false, withdrawn: true, busyMs: 0 });
        else if (where !== Progress.Running && !closing && waiting.requeued < MAX_REQUEUES) {
          waiting.requeued++;
          // Ended with its answer lost: it runs again (unless withdrawn meanwhile).
          Atomics.compareExchange(progress, slot, Progress.Ended, Progress.Waiting);
          again.push(waiting);
          logger.debug({ topic, partition, offset, progress: where }, 'its pool thread ended before it ran or answered: handed on again');
        } else
          waiting.reject(
            new WharfError(
              'ERR_POOL_THREAD_EXITED',
              `The pool thread handling ${topic}/${partition}@${offset} ended: ${(error as Error).message}`,
              {
                cause: error,
                retriable: true,
              },
            ),
          );
      }
      pending = [...again, ...pending];
    } finally {
      tasks--;
    }
    flush();
  }

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
    async run(input, signal) {
      const slot = freeSlots.pop() ?? (await new Promise<number>((resolve) => slotWaiters.push(resolve)));
      Atomics.store(progress, slot, Progress.Waiting);
      // A thread takes a message by moving it from Waiting to Running, so only one of the two wins.
      const withdraw = () => Atomics.compareExchange(progress, slot, Progress.Waiting, Progress.Withdrawn);
      if (signal?.aborted) withdraw();
      else signal?.addEventListener('abort', withdraw, { once: true });
      let result: TaskResult;
      try {
        result = await enqueue(input, slot);
      } finally {
        signal?.removeEventListener('abort', withdraw);
        const waiter = slotWaiters.shift();
        if (waiter) waiter(slot);
        else freeSlots.push(slot);
      }
      if ('withdrawn' in result) return result;
      completed++;
      busyMs += result.busyMs;
      return result;
    },
    health: () => ({
      threads: readyCount(),
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
