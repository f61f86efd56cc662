import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { UsageError, WharfError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { createSupervisor, type Supervisor } from '../../src/supervisor/supervisor.js';

/**
 * The service under load: a built-in one by name, or the compiled module of any service that
 * answers with `ctx.reply`. It runs in an in-process supervisor, exactly as `npm start` runs it,
 * but on topics and a group of the run's own, so a run never mixes with the demo or another run.
 */
export const BUILT_IN_SERVICES = {
  jarvis: 'workers/demo/jarvis.js',
  echo: 'workers/echo.js',
} as const;

export type BuiltInService = keyof typeof BUILT_IN_SERVICES;

export interface LoadTarget {
  /** What the user named: `jarvis`, `echo` or a path. */
  name: string;
  module: string;
}

/** A built-in name or a path to a .js/.mjs service module; anything else is a UsageError. */
export function resolveTarget(name: string, cwd = process.cwd()): LoadTarget {
  if (Object.hasOwn(BUILT_IN_SERVICES, name)) return { name, module: compiled(BUILT_IN_SERVICES[name as BuiltInService]) };
  const path = resolve(cwd, name);
  if (['.js', '.mjs'].includes(extname(name)) && existsSync(path)) return { name, module: path };
  const known = Object.keys(BUILT_IN_SERVICES).join(' or ');
  const hint = ['.js', '.mjs'].includes(extname(name)) ? ` (no file ${path})` : '';
  throw new UsageError(
    `Unknown service "${name}"${hint}: use ${known}, or the path of a compiled service module that answers with ctx.reply.`,
  );
}

export interface RunningTarget {
  /** The service's name as its definition gives it. */
  service: string;
  stop(): Promise<void>;
}

export interface TargetOptions {
  target: LoadTarget;
  brokers: string[];
  workers: number;
  requestTopic: string;
  groupId: string;
  logger: Logger;
  /** Called when a worker crashes during the run (the supervisor restarts it). */
  onCrash(workerId: string, reason: string): void;
}

export async function startTarget({
  target,
  brokers,
  workers,
  requestTopic,
  groupId,
  logger,
  onCrash,
}: TargetOptions): Promise<RunningTarget & { supervisor: Supervisor }> {
  const config = parseConfig(
    {
      services: [{ module: target.module, workers: { consumer: workers, producer: 0 }, consumes: { topics: [requestTopic], groupId } }],
      kafka: { clientId: 'wharf-load' },
    },
    `load --service ${target.name}`,
    process.cwd(),
  );
  const services = await loadServices(config);
  const loaded = services[0]!;
  if (!loaded.consumes)
    throw new UsageError(
      `Service "${loaded.name}" (${target.name}) consumes nothing, so there is nothing to put under load: pick a service with a handler that answers with ctx.reply.`,
    );
  const supervisor = createSupervisor({ config, services, brokers, logger });
  const offCrash = supervisor.events.on('worker:crashed', ({ workerId, reason }) => onCrash(workerId, reason));
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.terminateAll();
    supervisor.store.close();
    throw error;
  }
  const failed = supervisor.status().services.find((s) => s.health === 'failed');
  if (failed) {
    await supervisor.stop();
    supervisor.store.close();
    throw new WharfError(
      'ERR_LOAD_TARGET',
      `Service "${loaded.name}" failed to start: ${failed.reason}. Run it with \`npm start -- --config FILE\` to see its logs.`,
    );
  }
  return {
    supervisor,
    service: loaded.name,
    async stop() {
      offCrash();
      await supervisor.stop();
      supervisor.store.close();
    },
  };
}
