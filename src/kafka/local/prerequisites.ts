import { spawnSync } from 'node:child_process';
import { PrerequisiteError } from '../../errors.js';

export const MIN_JAVA = 17;

/** The major version from `java -version` output ("17.0.15", "1.8.0_392" → 8, "21" → 21). */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(versionOutput);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] ? Number(match[2]) : first;
}

export interface Command {
  found: boolean;
  output: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Command {
  const result = spawnSync(command, args, { encoding: 'utf8', env, timeout: 30_000 });
  if (result.error) return { found: false, output: '' };
  return { found: true, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

/** The java to run the broker with: JAVA_HOME's if set, else the one on PATH. */
export function javaCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.JAVA_HOME ? `${env.JAVA_HOME}/bin/java` : 'java';
}

export function checkJava(env: NodeJS.ProcessEnv = process.env): string {
  const java = javaCommand(env);
  const { found, output } = run(java, ['-version'], env);
  if (!found) {
    throw new PrerequisiteError(
      `The local Kafka broker needs Java ${MIN_JAVA}+, and no java was found (${java}). ` +
        `Install a JDK (apt-get install openjdk-17-jre-headless) or set JAVA_HOME.`,
      { context: { java } },
    );
  }
  const major = parseJavaMajor(output);
  if (major === undefined || major < MIN_JAVA) {
    throw new PrerequisiteError(
      `The local Kafka broker needs Java ${MIN_JAVA}+, and ${java} is ${major ?? 'of an unknown version'}. ` +
        `Install Java ${MIN_JAVA} or newer, or point JAVA_HOME at one.`,
      { context: { java, major } },
    );
  }
  return java;
}

export function checkMaven(env: NodeJS.ProcessEnv = process.env): string {
  const { found } = run('mvn', ['--version'], env);
  if (!found) {
    throw new PrerequisiteError(
      'Fetching the Kafka broker needs Maven (mvn), and none is on PATH. Install it (apt-get install maven), ' +
        'or point KAFKA_BROKERS at a running cluster.',
    );
  }
  return 'mvn';
}
