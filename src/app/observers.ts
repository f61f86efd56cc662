import { describeError } from '../errors.js';
import type { LoadedService } from '../config/services.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';

/**
 * Runs each service's `observe` hook in the main thread (the demo prints every exchange) and
 * returns one cleanup for all of them. A hook that throws fails the start; a cleanup that throws
 * is logged.
 */
export function startObservers(
  services: readonly LoadedService[],
  store: StateStore,
  print: (line: string) => void,
  logger: Logger,
): () => void {
  const cleanups: (() => void)[] = [];
  const releaseAll = () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        cleanup();
      } catch (error) {
        logger.warn({ err: describeError(error) }, 'observer cleanup failed');
      }
    }
  };
  try {
    for (const service of services) {
      const cleanup = service.definition.observe?.({
        watch: (name, listener) => store.watch(name, listener),
        print,
        log: logger.child({ service: service.name, role: 'observer' }),
      });
      if (cleanup) cleanups.push(cleanup);
    }
  } catch (error) {
    releaseAll();
    throw error;
  }
  return releaseAll;
}
