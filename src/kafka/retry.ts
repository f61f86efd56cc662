/**
 * The small pieces a consumer's retries are made of: the policy, its backoff, a sleep that a
 * rebalance or a drain can cut short, and the slots that bound how many handlers run at once.
 */
export interface RetryPolicy {
  /** Handler attempts before a message is dead-lettered (1: no retries). */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Delay after failed attempt `attempt` (1-based): exponential, capped, with jitter in [50%, 100%]. */
export function retryDelay({ initialDelayMs, maxDelayMs }: RetryPolicy, attempt: number, random = Math.random): number {
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(base * (0.5 + random() / 2));
}

/**
 * Whether a failure is worth another attempt: anything unless it says it is not
 * (`retriable: false`, as every WharfError that cannot succeed again does).
 */
export function isRetriable(error: unknown): boolean {
  return (error as { retriable?: unknown } | null)?.retriable !== false;
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface Slots {
  /** Waits for a free slot; false if `signal` aborted first (no slot taken). */
  acquire(signal?: AbortSignal): Promise<boolean>;
  /** Takes a free slot if there is one and nobody waits: true when taken (no promise, no tick). */
  tryAcquire(): boolean;
  release(): void;
  readonly active: number;
}

/** A counting semaphore, first come first served. */
export function createSlots(size: number): Slots {
  let active = 0;
  const waiters: { grant: () => void }[] = [];
  return {
    get active() {
      return active;
    },
    tryAcquire() {
      if (active >= size || waiters.length > 0) return false;
      active++;
      return true;
    },
    acquire(signal) {
      if (signal?.aborted) return Promise.resolve(false);
      if (active < size) {
        active++;
        return Promise.resolve(true);
      }
      return new Promise((resolve) => {
        const waiter = {
          grant: () => {
            signal?.removeEventListener('abort', onAbort);
            active++;
            resolve(true);
          },
        };
        const onAbort = () => {
          waiters.splice(waiters.indexOf(waiter), 1);
          resolve(false);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
      });
    },
    release() {
      active--;
      waiters.shift()?.grant();
    },
  };
}
