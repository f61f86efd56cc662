import { pathToFileURL } from 'node:url';
import { WharfError } from '../errors.js';
import type { Role } from '../status.js';

/** What the config's `tracing.module` default export is called with, once per thread. */
export interface TracingTarget {
  service: string;
  role: Role;
  workerId: string;
  /** A worker thread of the supervisor, or a thread of a consumer worker's pool (`consumes.concurrency`). */
  thread: 'worker' | 'pool';
}

/** Flushes and stops what the module registered; wharf calls it when the thread drains. */
export type TracingShutdown = () => Promise<void>;

const NOTHING: TracingShutdown = async () => undefined;

/**
 * Imports the config's `tracing.module` in this thread, before the service module: an SDK
 * registered in the main thread does not exist in worker threads, so each registers its own.
 * A default export that is a function is called with the thread's TracingTarget (to name the
 * resource after the service, say) and may return a shutdown function or an object with
 * `shutdown()` (a tracer provider), called at drain so buffered spans are exported.
 */
export async function loadTracingModule(path: string | undefined, target: TracingTarget): Promise<TracingShutdown> {
  if (!path) return NOTHING;
  try {
    const module = (await import(pathToFileURL(path).href)) as { default?: unknown };
    const setup = module.default;
    const result = (typeof setup === 'function' ? await (setup as (t: TracingTarget) => unknown)(target) : undefined) as
      TracingShutdown | { shutdown?: unknown } | undefined;
    if (typeof result === 'function') return async () => void (await result());
    if (result && typeof result.shutdown === 'function') return async () => void (await (result.shutdown as TracingShutdown)());
    return NOTHING;
  } catch (error) {
    throw new WharfError(
      'ERR_TRACING_MODULE',
      `The tracing module ${path} (config tracing.module) failed in ${target.workerId}: ${(error as Error).message ?? String(error)}`,
      { cause: error, context: { module: path, workerId: target.workerId } },
    );
  }
}

/** Calls `shutdown`, giving up after `timeoutMs` (an exporter whose backend is down must not hold a drain). */
export async function shutdownTracing(shutdown: TracingShutdown, timeoutMs = 5_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([shutdown(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]).finally(() =>
    clearTimeout(timer),
  );
}
