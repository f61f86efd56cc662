import type { PoolHealth } from '../protocol.js';

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
