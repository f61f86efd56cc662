import { WharfError } from '../errors.js';
import { ErrorCodes, isPlainObject } from './protocol.js';

/**
 * The admin socket's `lag` method (AdminApi.extra): the consumer-lag report of every group the
 * deployment consumes (src/metrics/lag-monitor.ts), the same one `/metrics` shows. No params.
 */
export function lagAdminMethods(monitor: { report(): Promise<unknown> }): Record<string, (params: unknown) => Promise<unknown>> {
  return {
    lag: async (params) => {
      if (params !== undefined && params !== null && !(isPlainObject(params) && Object.keys(params).length === 0))
        throw new WharfError(ErrorCodes.badParams, 'lag takes no params', { context: { method: 'lag' } });
      return monitor.report();
    },
  };
}
