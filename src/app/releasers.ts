import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * What an assembly started, to be released in reverse order: each step that starts something
 * registers how to release it, so a failure at any step releases exactly what came before it.
 * A releaser that fails is logged and the rest still run.
 */
export interface Releasers {
  add(name: string, release: () => Promise<void> | void): void;
  /** Runs every releaser not yet run, last added first; resolves with the names of those that failed. */
  releaseAll(): Promise<string[]>;
  readonly size: number;
}

export function createReleasers(logger: Logger): Releasers {
  const stack: { name: string; release: () => Promise<void> | void }[] = [];
  return {
    add(name, release) {
      stack.push({ name, release });
    },
    async releaseAll() {
      const failed: string[] = [];
      for (let next = stack.pop(); next; next = stack.pop()) {
        try {
          await next.release();
        } catch (error) {
          failed.push(next.name);
          logger.warn({ err: describeError(error), step: next.name }, `releasing ${next.name} failed`);
        }
      }
      return failed;
    },
    get size() {
      return stack.length;
    },
  };
}
