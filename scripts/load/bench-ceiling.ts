import { once } from 'node:events';
import { parentPort, Worker } from 'node:worker_threads';
import { compiled } from '../../src/paths.js';
import { burnCpu } from './cpu-work.js';

/**
 * The machine's own ceiling for a CPU-bound handler: the same work as the scaling sections'
 * handler (cpu-work.ts), `messages` of it split over `threads` plain worker_threads, with no Kafka,
 * no supervisor and no messages between them but "go" and "done". Measured in the bench's run
 * between the Kafka variants, while the broker idles: what 1 or 2 threads can do on this machine
 * now is what wharf's workers and pool should be measured against, not a formula of cores.
 */
export const CEILING_THREAD_ENTRY = 'scripts/bench/ceiling-thread.js';

interface Job {
  messages: number;
  iterations: number;
}

export async function measureCeiling({
  threads,
  messages,
  iterations,
}: Job & { threads: number }): Promise<{ msgsPerSec: number; drainS: number; startupS: number }> {
  const started = performance.now();
  const workers = Array.from({ length: threads }, () => new Worker(compiled(CEILING_THREAD_ENTRY)));
  try {
    await Promise.all(workers.map((w) => once(w, 'online')));
    const opened = performance.now();
    const share = (i: number) => Math.floor(messages / threads) + (i < messages % threads ? 1 : 0);
    await Promise.all(
      workers.map((w, i) => {
        const done = once(w, 'message');
        w.postMessage({ messages: share(i), iterations } satisfies Job);
        return done;
      }),
    );
    const drainS = (performance.now() - opened) / 1_000;
    return {
      msgsPerSec: Math.round(messages / drainS),
      drainS: Math.round(drainS * 1_000) / 1_000,
      startupS: Math.round(opened - started) / 1_000,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The thread's side (scripts/bench/ceiling-thread.ts only calls this): one job, then "done". */
export function runCeilingThread(): void {
  parentPort!.once('message', ({ messages, iterations }: Job) => {
    for (let i = 0; i < messages; i++) burnCpu(iterations);
    parentPort!.postMessage('done');
  });
}
