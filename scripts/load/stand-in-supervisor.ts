import { WharfError } from '../../src/errors.js';
import type { SupervisorStatus } from '../../src/status.js';

/**
 * The supervisor's face on an admin socket for benchmarks that measure shared state alone (the
 * Python client's section, the cluster section): a status with no services, and a scale that
 * says so. No broker, no workers.
 */
export function standInSupervisor(): { status(): SupervisorStatus; scale(): Promise<never> } {
  const startedAt = Date.now();
  return {
    status: () => ({
      pid: process.pid,
      startedAt: new Date(startedAt).toISOString(),
      uptimeMs: Date.now() - startedAt,
      brokers: [],
      services: [],
      workers: [],
    }),
    scale: () => Promise.reject(new WharfError('ERR_UNKNOWN_SERVICE', 'the benchmark supervisor runs no services')),
  };
}
