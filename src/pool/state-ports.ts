import type { MessagePort } from 'node:worker_threads';
import { TimeoutError } from '../errors.js';
import type { SupervisorToWorker, WorkerToSupervisor } from '../protocol.js';

/**
 * A consumer worker asking the supervisor for shared-state ports for its pool threads
 * (`state-port:request` → `state-port` in src/protocol.ts). Each pool thread is a holder of its
 * own (`<workerId>/pool/<suffix>`): its locks and permits go back when that thread ends, not when
 * the whole worker does, and its calls never queue behind the consumer's.
 */
export type StatePortSource = (suffix: string) => Promise<{ port: MessagePort; holderId: string }>;

export function statePortSource(parent: MessagePort, { timeoutMs = 10_000 } = {}): StatePortSource {
  const waiting = new Map<number, (granted: { port: MessagePort; holderId: string }) => void>();
  let nextId = 1;
  parent.on('message', (message: SupervisorToWorker) => {
    if (message.type !== 'state-port') return;
    waiting.get(message.requestId)?.({ port: message.port, holderId: message.holderId });
    waiting.delete(message.requestId);
  });
  return (suffix) =>
    new Promise((resolve, reject) => {
      const requestId = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(requestId);
        reject(
          new TimeoutError(
            `The supervisor sent no state port within ${timeoutMs} ms (is this worker started by a wharf supervisor of the same version?).`,
          ),
        );
      }, timeoutMs);
      waiting.set(requestId, (granted) => {
        clearTimeout(timer);
        resolve(granted);
      });
      parent.postMessage({ type: 'state-port:request', requestId, suffix } satisfies WorkerToSupervisor);
    });
}
