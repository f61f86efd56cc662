/** What a running supervisor reports about itself (admin `workers`, status files, tests). */
export type WorkerState = 'starting' | 'ready' | 'draining' | 'stopped' | 'crashed';
export type Role = 'consumer' | 'producer';

export interface WorkerStatus {
  workerId: string;
  service: string;
  role: Role;
  state: WorkerState;
  threadId: number | null;
  restarts: number;
  /** Messages handled (consumer) or sent (producer) by this worker slot, across restarts. */
  handled: number;
  errors: number;
  startedAt: string | null;
  lastHeartbeatAt: string | null;
  /** Heap used by the thread, from its last heartbeat. */
  heapUsedBytes: number | null;
  lastError: string | null;
  /** The consumer's thread pool (`consumes.concurrency`), from its last heartbeat; null without one. */
  pool?: PoolHealth | null;
}

export type ServiceHealth = 'starting' | 'healthy' | 'degraded' | 'failed' | 'stopped';

export interface ServiceStatus {
  name: string;
  health: ServiceHealth;
  /** Why the service failed (crash loop), when it did. */
  reason: string | null;
  workers: { consumer: number; producer: number };
  handled: number;
  restarts: number;
}

export interface SupervisorStatus {
  pid: number;
  startedAt: string;
  uptimeMs: number;
  brokers: string[];
  services: ServiceStatus[];
  workers: WorkerStatus[];
}

/**
 * The health of a consumer worker's thread pool (`consumes.concurrency`; src/pool/), sent with
 * every heartbeat and shown by `npm run admin -- workers`.
 */
export interface PoolHealth {
  mode: 'key' | 'partition' | 'unordered';
  /** Threads set up and taking tasks, of `maxThreads`. */
  threads: number;
  maxThreads: number;
  /** Messages taken from Kafka and not finished, of `maxInFlight` (fetching pauses there). */
  inFlight: number;
  maxInFlight: number;
  /** On a thread now. */
  running: number;
  /** Free to run, waiting for a thread. */
  queued: number;
  /** Behind an earlier message of the same key (or partition) that has not finished. */
  waitingOnKey: number;
  /** Waiting out a retry backoff, or being parked in the dead-letter topic. */
  retrying: number;
  /** Attempts the threads ran to the end. */
  completed: number;
  /** Time spent in handlers, all threads together, since the worker started. */
  busyMs: number;
  /** Busy time / (threads × wall time) over the last second, 0..1. */
  utilization: number;
  /** Pool threads that ended (crash, process.exit, out of memory) and were replaced. */
  threadExits: number;
}
