import type { Logger } from '../log.js';
import type { ProducerContext, ProducerRole, RoleContext } from '../service.js';

export interface ProducerLoop {
  stop(): Promise<void>;
  readonly stats: { ticks: number; errors: number };
}

/**
 * Runs a service's producer role: `tick` at `rate` per second on a fixed schedule (a slow tick
 * delays the next, it does not pile ticks up), or its own `run` loop until drained.
 */
export function startProducerLoop({
  base,
  role,
  rate,
  logger,
}: {
  base: RoleContext;
  role: ProducerRole;
  rate: number;
  logger: Logger;
}): ProducerLoop {
  const abort = new AbortController();
  const ctx: ProducerContext = { ...base, signal: abort.signal };
  const stats = { ticks: 0, errors: 0 };
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function ticking(tick: NonNullable<ProducerRole['tick']>): Promise<void> {
    const intervalMs = 1000 / rate;
    const started = performance.now();
    for (let sequence = 1; !abort.signal.aborted; sequence++) {
      try {
        await tick(ctx, sequence);
        stats.ticks++;
      } catch (error) {
        stats.errors++;
        logger.error({ err: error, sequence }, 'producer tick failed');
      }
      const due = started + sequence * intervalMs - performance.now();
      if (due > 0 && !abort.signal.aborted) await pause(due);
    }
  }

  const done = role.run ? role.run(ctx) : ticking(role.tick!);
  const finished = done.catch((error: unknown) => {
    stats.errors++;
    logger.error({ err: error }, 'producer role failed');
    throw error;
  });
  // A run() that fails is the worker's failure: let it surface as an uncaught error.
  finished.catch((error: unknown) => {
    if (!abort.signal.aborted)
      setImmediate(() => {
        throw error;
      });
  });

  return {
    stats,
    async stop() {
      abort.abort();
      wake?.();
      await finished.catch(() => undefined);
    },
  };
}
