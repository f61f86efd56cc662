import { TimeoutError, WharfError } from '../errors.js';
import type { CallContext } from './object.js';

/**
 * A first-come, first-served line of callers waiting on one object (lock, semaphore, event,
 * queue). Deadlines are kept here, on the owner, not in the worker: the owner decides both
 * "granted" and "timed out", so a caller can never be told it timed out while the grant it did not
 * see is still held in its name.
 */
export interface Waiter<T = undefined> {
  readonly call: CallContext;
  readonly data: T;
  timer?: NodeJS.Timeout;
}

export interface WaitLine<T> {
  readonly length: number;
  /** Queues a caller; after timeoutMs (if any) it is removed and rejected with `timeoutMessage()`. */
  add(call: CallContext, data: T, timeoutMs: number | undefined, timeoutMessage: () => string): void;
  /** The caller served next, removed from the line with its deadline cleared. */
  shift(): Waiter<T> | undefined;
  /** Removes every waiter of that holder (it is gone), rejecting each with `error`. */
  dropHolder(holderId: string, error: WharfError): void;
  rejectAll(error: WharfError): void;
}

export function createWaitLine<T = undefined>(): WaitLine<T> {
  let line: Waiter<T>[] = [];

  function remove(waiter: Waiter<T>): void {
    const index = line.indexOf(waiter);
    if (index >= 0) line.splice(index, 1);
  }

  return {
    get length() {
      return line.length;
    },
    add(call, data, timeoutMs, timeoutMessage) {
      const waiter: Waiter<T> = { call, data };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          remove(waiter);
          call.reject(new TimeoutError(timeoutMessage(), { context: { timeoutMs } }));
        }, timeoutMs);
        // A supervisor whose only pending work is a worker's wait should still be able to exit.
        waiter.timer.unref();
      }
      line.push(waiter);
    },
    shift() {
      const waiter = line.shift();
      if (waiter?.timer) clearTimeout(waiter.timer);
      return waiter;
    },
    dropHolder(holderId, error) {
      const gone = line.filter((waiter) => waiter.call.holderId === holderId);
      if (gone.length === 0) return;
      line = line.filter((waiter) => waiter.call.holderId !== holderId);
      for (const waiter of gone) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.call.reject(error);
      }
    },
    rejectAll(error) {
      const all = line;
      line = [];
      for (const waiter of all) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.call.reject(error);
      }
    },
  };
}

export function holderGone(holderId: string): WharfError {
  return new WharfError(
    'ERR_STATE_RELEASED',
    `Holder ${JSON.stringify(holderId)} was released (its worker ended); its waits are cancelled.`,
    {
      context: { holderId },
    },
  );
}

/** "2.1 s" / "40 ms": deadlines in messages people read. */
export function formatMs(ms: number): string {
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
