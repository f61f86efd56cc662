import { WharfError } from '../errors.js';
import type { WorkerState } from '../status.js';

/**
 * A worker's lifecycle as an explicit table. `crashed → starting` is a restart;
 * `crashed → stopped` is giving up (crash loop) or a crash during shutdown.
 */
export const VALID_TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  starting: ['ready', 'draining', 'crashed', 'stopped'],
  ready: ['draining', 'crashed'],
  draining: ['stopped', 'crashed'],
  crashed: ['starting', 'stopped'],
  stopped: ['starting'],
};

export class IllegalTransitionError extends WharfError {
  override readonly name = 'IllegalTransitionError';
  constructor(workerId: string, from: WorkerState, to: WorkerState) {
    super(
      'ERR_ILLEGAL_TRANSITION',
      `Cannot move worker ${workerId} from ${from} to ${to}: allowed from ${from} is ${VALID_TRANSITIONS[from].join(', ') || 'nothing'}.`,
      {
        context: { workerId, from, to },
      },
    );
  }
}

export function canTransition(from: WorkerState, to: WorkerState): boolean {
  return VALID_TRANSITIONS[from].includes(to);
}

export function assertTransition(workerId: string, from: WorkerState, to: WorkerState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(workerId, from, to);
}
