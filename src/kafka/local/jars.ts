import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrerequisiteError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { packageRoot } from '../../paths.js';
import { checkMaven } from './prerequisites.js';

/** The pinned broker version (see docs/architecture.md for why); WHARF_KAFKA_VERSION overrides. */
export const DEFAULT_KAFKA_VERSION = '4.4.0';

export function kafkaVersion(env: NodeJS.ProcessEnv = process.env): string {
  return env.WHARF_KAFKA_VERSION?.trim() || DEFAULT_KAFKA_VERSION;
}

export function isValidKafkaVersion(version: string): boolean {
  return /^\d+\.\d+\.\d+$/.test(version);
}

export interface JarsOptions {
  version: string;
  /** Folder holding one sub-folder of jars per version. */
  cacheDir: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

const COMPLETE = '.complete';

/** The lines of Maven's output that say what went wrong. */
function mavenErrors(output: string): string {
  const lines = output
    .split('\n')
    // eslint-disable-next-line no-control-regex -- Maven's colour codes start with ESC
    .map((line) => line.replace(/\u001b\[[0-9;]*m/g, '').trim())
    .filter((line) => line.startsWith('[ERROR]'))
    .map((line) => line.replace(/^\[ERROR\]\s*/, '').replace(/\s*-> \[Help \d+\]$/, ''))
    .filter((line) => line && !/^(To see the full|Re-run Maven|For more information|\[Help \d+\])/.test(line));
  const first = lines[0] ?? output.trim().split('\n').slice(-1)[0] ?? 'mvn failed';
  // Maven's first error says it all, and says it at length: keep the part that names the cause.
  const cause = first.replace(/^Failed to execute goal on project [^:]+: /, '').split(/(?<=\.)\s/)[0]!;
  return cause.length > 400 ? `${cause.slice(0, 400)}…` : cause;
}

/**
 * The classpath folder of Apache Kafka `version`, fetched by Maven on first use. The download goes
 * to a temporary folder renamed into place, so an interrupted fetch never leaves half a classpath.
 */
export async function ensureKafkaJars({ version, cacheDir, logger, env = process.env }: JarsOptions): Promise<string> {
  if (!isValidKafkaVersion(version)) {
    throw new PrerequisiteError(`Kafka version "${version}" is not a release number like 4.4.0 or 3.9.1.`);
  }
  const libs = join(cacheDir, version, 'libs');
  if (existsSync(join(libs, COMPLETE))) return libs;

  checkMaven(env);
  const staging = join(cacheDir, version, `libs.${process.pid}.partial`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  logger.info({ version }, `fetching Apache Kafka ${version} from the Maven registry (first run only)…`);
  const started = Date.now();

  const args = [
    '-B',
    '-ntp',
    '-f',
    join(packageRoot(), 'scripts', 'kafka', 'pom.xml'),
    'dependency:copy-dependencies',
    `-Dkafka.version=${version}`,
    `-DoutputDirectory=${staging}`,
    '-DincludeScope=runtime',
  ];
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('mvn', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', (error) => resolve({ code: -1, output: String(error) }));
    child.on('close', (code) => resolve({ code, output }));
  });
  if (code !== 0 || !readdirSync(staging).some((name) => name.startsWith('kafka_'))) {
    rmSync(staging, { recursive: true, force: true });
    throw new PrerequisiteError(
      `Could not fetch Apache Kafka ${version} from the Maven registry: ${mavenErrors(output)} ` +
        `Check that the registry is reachable and the version exists, or set KAFKA_BROKERS to a running cluster.`,
      { context: { version } },
    );
  }
  writeFileSync(join(staging, COMPLETE), `${new Date().toISOString()}\n`);
  rmSync(libs, { recursive: true, force: true });
  renameSync(staging, libs);
  logger.info({ version, ms: Date.now() - started }, `Apache Kafka ${version} cached in ${libs}`);
  return libs;
}
