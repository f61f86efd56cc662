/**
 * Every message between the supervisor (main thread) and its worker threads, typed in one place.
 * Lifecycle and health travel on the Worker's own port (parentPort); shared-state calls travel on
 * a dedicated MessagePort per worker whose messages are defined in src/state/messages.ts.
 *
 * Handshake: the worker is spawned with `WorkerData`, connects to Kafka, loads its service and
 * posts `ready`; the supervisor counts it started only then. From then on it posts a `heartbeat`
 * every `heartbeatIntervalMs` from its event loop, so a blocked loop shows as silence.
 */
import type { MessagePort } from 'node:worker_threads';
import type { DeliveryOptions } from './delivery.js';
import type { ConsumerStats } from './kafka/consumer-runner.js';
import type { RequesterStats } from './kafka/request-reply.js';
import type { PoolHealth, Role } from './status.js';
import type { ThreadMetricsSnapshot } from './thread-metrics.js';

export type { PoolHealth };

/** What a worker is started with (structured-cloned; the state port is transferred). */
export interface WorkerData {
  workerId: string;
  service: string;
  role: Role;
  /** Absolute path of the compiled service module (its default export is a defineService result). */
  modulePath: string;
  /** The config's `tracing.module` (absolute), imported first to register an OpenTelemetry SDK in the thread. */
  tracingModule?: string;
  brokers: string[];
  /**
   * The consumer role's subscription (config overrides applied) and how it consumes (retries,
   * commits, backpressure, size limit: definition < config, defaults filled in the worker);
   * null when the service consumes nothing. Producer workers get it too.
   */
  consumes: { topics: string[]; groupId: string; fromBeginning: boolean; delivery?: DeliveryOptions } | null;
  /** Producer ticks per second, where the service has a producer role. */
  rate: number;
  /** Free-form per-service settings from the config, handed to the service as `ctx.options`. */
  options: Record<string, unknown>;
  heartbeatIntervalMs: number;
  /** Count for `/metrics` (src/thread-metrics.ts); false when the supervisor has no HTTP listener, so nothing is counted. */
  metrics?: boolean;
  kafka: { sessionTimeoutMs: number; clientId: string };
  logLevel: string;
  pretty: boolean;
  statePort: MessagePort;
}

export interface WorkerCounters {
  /** Messages handled (consumer) or sent (producer) since this thread started. */
  handled: number;
  errors: number;
  heapUsedBytes: number;
  /** Delivery details since this thread started (also published in the shared map `wharf.delivery`). */
  delivery?: DeliveryCounters;
  /** Set when the consumer runs its handler in a thread pool. */
  pool?: PoolHealth;
  /** What the thread counted for `/metrics` since it started (src/thread-metrics.ts). */
  metrics?: ThreadMetricsSnapshot;
}

/** What a worker's consumer runner and requester have done; see docs/messaging.md. */
export type DeliveryCounters = ConsumerStats & Omit<RequesterStats, 'pending'> & { pendingRequests: number };

export type WorkerToSupervisor =
  | { type: 'ready' }
  | ({ type: 'heartbeat'; at: number } & WorkerCounters)
  /** The worker finished draining: in-flight work done, offsets committed, clients closed. */
  | ({ type: 'drained' } & WorkerCounters)
  /** A failure the worker caught but cannot go on from (it exits right after). */
  | { type: 'fatal'; error: { name: string; message: string; code?: string } }
  /** A consumer worker asks for a shared-state port for one of its pool threads (src/pool/state-ports.ts). */
  | { type: 'state-port:request'; requestId: number; suffix: string };

export type SupervisorToWorker =
  /** Stop taking new work, finish what is in flight, commit, leave the group, close, then post `drained`. */
  | { type: 'drain' }
  /** The answer to `state-port:request`: a port of holder `<workerId>/pool/<suffix>`, transferred. */
  | { type: 'state-port'; requestId: number; holderId: string; port: MessagePort };

export function isWorkerMessage(value: unknown): value is WorkerToSupervisor {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}
