import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { resolveBroker } from '../src/kafka/broker.js';
import { stopLocalCluster } from '../src/kafka/local/cluster.js';
import { createLogger } from '../src/log.js';
import { stateHome } from '../src/paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    brokers: string;
    brokerSource: string;
  }
}

/**
 * Resolves one broker for the whole run. With no KAFKA_BROKERS and no Docker it starts a local
 * broker of its own on free ports in .wharf/test-brokers/<pid>, so it never touches a broker the
 * developer runs, and stops exactly that one at the end. Brokers left by a run that was killed
 * are stopped first.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger({ fd: 2, level: process.env.WHARF_LOG_LEVEL ? undefined : 'warn' });
  const root = join(stateHome(), 'test-brokers');
  await sweepAbandoned(root, logger);
  const dir = join(root, String(process.pid));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));

  const started = Date.now();
  const broker = await resolveBroker({ logger, local: { dir, port: 0, stopOnRelease: true } });
  process.stderr.write(`test broker: ${broker.source} at ${broker.brokers.join(',')} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  project.provide('brokers', broker.brokers.join(','));
  project.provide('brokerSource', broker.source);

  return async () => {
    await broker.release();
    rmSync(dir, { recursive: true, force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function sweepAbandoned(root: string, logger: ReturnType<typeof createLogger>): Promise<void> {
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) {
    const dir = join(root, name);
    const ownerFile = join(dir, 'owner.pid');
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, 'utf8')) : NaN;
    if (Number.isInteger(owner) && isAlive(owner)) continue;
    await stopLocalCluster({ dir, logger, timeoutMs: 5_000 });
    rmSync(dir, { recursive: true, force: true });
  }
}
