import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { compiled } from '../paths.js';
import {
  isWorkerMessage,
  type DeliveryCounters,
  type PoolHealth,
  type SupervisorToWorker,
  type WorkerData,
  type WorkerToSupervisor,
} from '../protocol.js';
import type { StateStore } from '../state/store.js';
import { addSnapshots, emptySnapshot, type ThreadMetricsSnapshot } from '../thread-metrics.js';
import { assertTransition } from './lifecycle.js';
import type { Role, WorkerState, WorkerStatus } from '../status.js';

/**
 * One supervised place for a worker: `tony/consumer/0` keeps its id, counters and restart count
 * while the threads in it come and go. All of a thread's `message`/`error`/`exit` handling is
 * attached in one place (`attach`), and events from a thread that was already replaced are ignored.
 */
export interface SlotOptions {
  workerId: string;
  service: string;
  role: Role;
  /** WorkerData less what the slot fills in (ids, the state port). */
  data: Omit<WorkerData, 'workerId' | 'service' | 'role' | 'statePort'>;
  store: StateStore;
  resourceLimits: { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb?: number };
  heartbeatTimeoutMs: number;
  readyTimeoutMs: number;
  logger: Logger;
  onReady(slot: WorkerSlot): void;
  /** The thread ended without being asked to: the supervisor decides what happens next. */
  onCrash(slot: WorkerSlot, reason: string): void;
}

export interface WorkerSlot {
  readonly workerId: string;
  readonly service: string;
  readonly role: Role;
  readonly state: WorkerState;
  spawn(): void;
  /** Asks the thread to drain; resolves true once drained, false if it ended otherwise. */
  drain(): Promise<boolean>;
  /** Ends the thread now (a crash from the slot's point of view unless it is stopping). */
  terminate(reason: string): Promise<void>;
  /** Marks a crashed slot stopped: given up on, or the supervisor is shutting down. */
  retire(reason: string): void;
  /** Called on a timer: replaces a thread that stopped heartbeating or never became ready. */
  checkHealth(now: number): void;
  status(): WorkerStatus;
  /** For `/metrics`: counts of every thread the slot ran (they never go back), gauges of the live one. */
  metrics(): { thread: ThreadMetricsSnapshot; delivery: DeliveryCounters };
}

/** Gauges of a thread: they end with it instead of adding up. */
const DELIVERY_GAUGES_ZERO = { inFlight: 0, maxInFlightSeen: 0, pausedPartitions: 0, pendingRequests: 0 };

function emptyDelivery(): DeliveryCounters {
  return {
    handled: 0,
    errors: 0,
    retries: 0,
    deadLettered: 0,
    rejected: 0,
    commits: 0,
    commitFailures: 0,
    rebalances: 0,
    requests: 0,
    replies: 0,
    timeouts: 0,
    lateReplies: 0,
    duplicateReplies: 0,
    unknownReplies: 0,
    ...DELIVERY_GAUGES_ZERO,
  };
}

function addDelivery(a: DeliveryCounters, b: DeliveryCounters): DeliveryCounters {
  const sum = { ...a };
  for (const key of Object.keys(sum) as (keyof DeliveryCounters)[]) sum[key] = a[key] + (b[key] ?? 0);
  return sum;
}

export function createWorkerSlot(options: SlotOptions): WorkerSlot {
  const { workerId, service, role, store, logger } = options;
  const log = logger.child({ service, role, workerId });
  let state: WorkerState = 'stopped';
  let worker: Worker | undefined;
  let restarts = -1;
  let base = { handled: 0, errors: 0 };
  let live = { handled: 0, errors: 0 };
  let startedAt: number | null = null;
  let lastHeartbeatAt: number | null = null;
  let heapUsedBytes: number | null = null;
  let pool: PoolHealth | null = null;
  // State holders of the thread's pool threads: released with the thread, whatever way it ends.
  const poolHolders = new Set<string>();
  let lastError: string | null = null;
  // What ended threads counted, and what the live one has counted so far (its last heartbeat).
  let metricsBase = emptySnapshot();
  let metricsLive = emptySnapshot();
  let deliveryBase = emptyDelivery();
  let deliveryLive = emptyDelivery();
  let pendingReason: string | undefined;
  let drained: ((ok: boolean) => void) | undefined;

  function move(to: WorkerState): void {
    assertTransition(workerId, state, to);
    state = to;
  }

  function foldCounters(): void {
    base = { handled: base.handled + live.handled, errors: base.errors + live.errors };
    live = { handled: 0, errors: 0 };
    metricsBase = addSnapshots(metricsBase, metricsLive);
    metricsLive = emptySnapshot();
    deliveryBase = addDelivery(deliveryBase, { ...deliveryLive, ...DELIVERY_GAUGES_ZERO });
    deliveryLive = emptyDelivery();
  }

  function attach(thread: Worker): void {
    const current = () => worker === thread;
    thread.on('message', (message: WorkerToSupervisor) => {
      if (!current() || !isWorkerMessage(message)) return;
      switch (message.type) {
        case 'ready':
          lastHeartbeatAt = Date.now();
          if (state === 'starting') {
            move('ready');
            options.onReady(slot);
          }
          break;
        case 'heartbeat':
        case 'drained':
          lastHeartbeatAt = Date.now();
          live = { handled: message.handled, errors: message.errors };
          heapUsedBytes = message.heapUsedBytes;
          pool = message.pool ?? null;
          if (message.metrics) metricsLive = message.metrics;
          if (message.delivery) deliveryLive = message.delivery;
          if (message.type === 'drained' && state === 'draining') {
            move('stopped');
            // Resolve once the thread is gone, so a stopped slot never has a live thread.
            void thread.terminate().then(() => drained?.(true));
          }
          break;
        case 'fatal':
          lastError = `${message.error.name}: ${message.error.message}`;
          break;
        case 'state-port:request': {
          // The id is made here, under this worker's own, so a worker cannot take another's holder.
          const holderId = `${workerId}/pool/${String(message.suffix)
            .replace(/[^\w.-]/g, '_')
            .slice(0, 64)}`;
          try {
            const port = store.connect(holderId);
            poolHolders.add(holderId);
            thread.postMessage({ type: 'state-port', requestId: message.requestId, holderId, port } satisfies SupervisorToWorker, [port]);
          } catch (error) {
            log.warn({ err: error, holderId }, 'no state port for a pool thread (the store is closing?)'); // the request times out there
          }
          break;
        }
      }
    });
    thread.on('error', (error: Error & { code?: string }) => {
      if (!current()) return;
      lastError =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `out of memory (heap limit ${options.resourceLimits.maxOldGenerationSizeMb} MB)`
          : `${error.name}: ${error.message}`;
      log.error({ err: error }, 'worker failed');
    });
    thread.on('exit', (code) => {
      if (!current()) return;
      worker = undefined;
      store.releaseHolder(workerId);
      for (const holderId of poolHolders) store.releaseHolder(holderId);
      poolHolders.clear();
      foldCounters();
      if (state === 'stopped') return; // drained, then terminated by us
      const reason = pendingReason ?? lastError ?? `exited with code ${code}`;
      pendingReason = undefined;
      lastError = reason;
      const wasDraining = state === 'draining';
      move('crashed');
      if (wasDraining) {
        drained?.(false);
        return;
      }
      log.warn({ code, reason }, 'worker crashed');
      options.onCrash(slot, reason);
    });
  }

  const slot: WorkerSlot = {
    workerId,
    service,
    role,
    get state() {
      return state;
    },
    spawn() {
      move('starting');
      restarts++;
      startedAt = Date.now();
      lastHeartbeatAt = null;
      const statePort = store.connect(workerId);
      const workerData: WorkerData = { ...options.data, workerId, service, role, statePort };
      const thread = new Worker(compiled(`workers/${role}.js`), {
        workerData,
        transferList: [statePort],
        resourceLimits: options.resourceLimits,
        name: workerId,
      });
      worker = thread;
      attach(thread);
    },
    drain() {
      if (state === 'stopped' || state === 'crashed') return Promise.resolve(state === 'stopped');
      move('draining');
      const done = new Promise<boolean>((resolve) => (drained = resolve));
      worker?.postMessage({ type: 'drain' } satisfies SupervisorToWorker);
      return done;
    },
    async terminate(reason) {
      if (!worker) return;
      pendingReason = reason;
      await worker.terminate();
    },
    retire(reason) {
      if (state === 'crashed') move('stopped');
      lastError = reason;
    },
    checkHealth(now) {
      if (state === 'starting' && startedAt && now - startedAt > options.readyTimeoutMs) {
        void slot.terminate(`not ready within ${options.readyTimeoutMs} ms`);
      } else if (state === 'ready' && lastHeartbeatAt && now - lastHeartbeatAt > options.heartbeatTimeoutMs) {
        log.warn({ silentMs: now - lastHeartbeatAt }, 'worker stopped heartbeating (blocked event loop?); replacing it');
        void slot.terminate(`unresponsive: no heartbeat for ${now - lastHeartbeatAt} ms (blocked event loop?)`);
      }
    },
    status() {
      return {
        workerId,
        service,
        role,
        state,
        threadId: worker?.threadId ?? null,
        restarts: Math.max(restarts, 0),
        handled: base.handled + live.handled,
        errors: base.errors + live.errors,
        startedAt: startedAt ? new Date(startedAt).toISOString() : null,
        lastHeartbeatAt: lastHeartbeatAt ? new Date(lastHeartbeatAt).toISOString() : null,
        heapUsedBytes,
        lastError,
        pool: worker ? pool : null,
      };
    },
    metrics() {
      return { thread: addSnapshots(metricsBase, metricsLive), delivery: addDelivery(deliveryBase, deliveryLive) };
    },
  };
  return slot;
}
