import type { Logger } from '../log.js';
import type { Role } from '../status.js';

/** Lifecycle events of a supervisor, named `noun:verb`. */
export interface SupervisorEventMap {
  'worker:ready': { workerId: string; service: string; role: Role; restarts: number; startMs: number };
  'worker:crashed': { workerId: string; service: string; role: Role; reason: string };
  'worker:restarting': { workerId: string; service: string; role: Role; delayMs: number; attempt: number };
  'worker:stopped': { workerId: string; service: string; role: Role };
  'service:failed': { service: string; reason: string };
  'supervisor:draining': { workers: number };
  'supervisor:stopped': { ok: boolean; unfinished: string[] };
}

export type SupervisorEventName = keyof SupervisorEventMap;
type Listener<E extends SupervisorEventName> = (payload: SupervisorEventMap[E]) => void;

export interface SupervisorEvents {
  on<E extends SupervisorEventName>(event: E, listener: Listener<E>): () => void;
  /** Resolves on the next `event` whose payload satisfies `where`. */
  once<E extends SupervisorEventName>(event: E, where?: (payload: SupervisorEventMap[E]) => boolean): Promise<SupervisorEventMap[E]>;
}

/** An emitter whose listeners cannot break the supervisor: a throwing listener is logged and skipped. */
export function createSupervisorEvents(
  logger: Logger,
): SupervisorEvents & { emit<E extends SupervisorEventName>(event: E, payload: SupervisorEventMap[E]): void } {
  const listeners = new Map<SupervisorEventName, Set<Listener<never>>>();
  const events = {
    on<E extends SupervisorEventName>(event: E, listener: Listener<E>) {
      const set = listeners.get(event) ?? new Set();
      set.add(listener as Listener<never>);
      listeners.set(event, set);
      return () => void set.delete(listener as Listener<never>);
    },
    once<E extends SupervisorEventName>(event: E, where: (payload: SupervisorEventMap[E]) => boolean = () => true) {
      return new Promise<SupervisorEventMap[E]>((resolve) => {
        const off = events.on(event, (payload) => {
          if (!where(payload)) return;
          off();
          resolve(payload);
        });
      });
    },
    emit<E extends SupervisorEventName>(event: E, payload: SupervisorEventMap[E]) {
      for (const listener of listeners.get(event) ?? []) {
        try {
          (listener as Listener<E>)(payload);
        } catch (error) {
          logger.error({ err: error, event }, 'supervisor event listener threw');
        }
      }
    },
  };
  return events;
}
