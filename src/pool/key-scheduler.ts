/**
 * Keeps order within a key: a job becomes ready only when every earlier job of its key has
 * finished, so two messages of one key never run at once and never finish out of order. Jobs
 * without a key are ready at once. Retries of a job keep its key busy, so the next message of
 * that key waits for the last attempt (or the dead-letter topic), as Kafka's order demands.
 */
export interface KeyScheduler<J> {
  /** `ready(job)` is called now if its key is free, else when the jobs before it have finished. */
  add(key: string | undefined, job: J): void;
  /** The ready job of `key` finished: the next one of that key, if any, becomes ready. */
  finish(key: string | undefined): void;
  /** Jobs waiting behind an earlier job of their key. */
  readonly waiting: number;
  /** Keys with an unfinished job. */
  readonly busyKeys: number;
}

export function createKeyScheduler<J>(ready: (job: J) => void): KeyScheduler<J> {
  // Per key, the jobs behind the one that is ready (which is not stored: only its key is busy).
  const behind = new Map<string, J[]>();
  let waiting = 0;

  return {
    add(key, job) {
      if (key === undefined) return ready(job);
      const queue = behind.get(key);
      if (queue) {
        queue.push(job);
        waiting++;
        return;
      }
      behind.set(key, []);
      ready(job);
    },
    finish(key) {
      if (key === undefined) return;
      const queue = behind.get(key);
      if (!queue) return;
      const next = queue.shift();
      if (next === undefined) {
        behind.delete(key);
        return;
      }
      waiting--;
      ready(next);
    },
    get waiting() {
      return waiting;
    },
    get busyKeys() {
      return behind.size;
    },
  };
}
