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
import type { Role } from './supervisor/status.js';

/** What a worker is started with (structured-cloned; the state port is transferred). */
export interface WorkerData {
  workerId: string;
  service: string;
  role: Role;
  /** Absolute path of the compiled service module (its default export is a defineService result). */
  modulePath: string;
  brokers: string[];
  /** The consumer role's subscription (config overrides applied); null for a producer. */
  consumes: { topics: string[]; groupId: string; fromBeginning: boolean } | null;
  /** Producer ticks per second, where the service has a producer role. */
  rate: number;
  /** Free-form per-service settings from the config, handed to the service as `ctx.options`. */
  options: Record<string, unknown>;
  heartbeatIntervalMs: number;
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
}

export type WorkerToSupervisor =
  | { type: 'ready' }
  | ({ type: 'heartbeat'; at: number } & WorkerCounters)
  /** The worker finished draining: in-flight work done, offsets committed, clients closed. */
  | ({ type: 'drained' } & WorkerCounters)
  /** A failure the worker caught but cannot go on from (it exits right after). */
  | { type: 'fatal'; error: { name: string; message: string; code?: string } };

export type SupervisorToWorker =
  /** Stop taking new work, finish what is in flight, commit, leave the group, close, then post `drained`. */
  { type: 'drain' };

export function isWorkerMessage(value: unknown): value is WorkerToSupervisor {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}
