import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerStartError } from '../../errors.js';
import { packageRoot } from '../../paths.js';
import { nodeProperties, type NodeSettings, type NodeSpec } from './properties.js';

/** The JVM processes of one local node: formatting its storage and running it. */

export function propertiesPath(node: NodeSpec): string {
  return join(node.dir, 'server.properties');
}

export function logFile(node: NodeSpec): string {
  return join(node.dir, 'logs', 'server.log');
}

function javaArgs(libs: string, node: NodeSpec, mainClass: string): string[] {
  return [
    '-Xms256m',
    '-Xmx768m',
    '-XX:+UseG1GC',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(packageRoot(), 'scripts', 'kafka', 'log4j2.xml')}`,
    `-Dkafka.logs.dir=${join(node.dir, 'logs')}`,
    '-cp',
    `${libs}/*`,
    mainClass,
  ];
}

/** Writes server.properties and formats storage once; later starts keep the data. */
export function prepareNode(
  java: string,
  libs: string,
  node: NodeSpec,
  nodes: readonly NodeSpec[],
  clusterId: string,
  settings: NodeSettings = {},
): void {
  mkdirSync(join(node.dir, 'logs'), { recursive: true });
  writeFileSync(propertiesPath(node), nodeProperties(node, nodes, settings));
  if (existsSync(join(node.dir, 'data', 'meta.properties'))) return;
  const result = spawnSync(
    java,
    [...javaArgs(libs, node, 'kafka.tools.StorageTool'), 'format', '-t', clusterId, '-c', propertiesPath(node), '--ignore-formatted'],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (result.status !== 0) {
    throw new BrokerStartError(
      `Formatting storage for local Kafka node ${node.nodeId} failed: ${(result.stderr || result.stdout || String(result.error)).trim().split('\n').slice(-3).join(' ')}`,
    );
  }
}

/** Starts the node's JVM detached from this process, its output in logs/stdout.log. */
export function spawnNode(java: string, libs: string, node: NodeSpec): number {
  const out = openSync(join(node.dir, 'logs', 'stdout.log'), 'a');
  try {
    const child = spawn(java, [...javaArgs(libs, node, 'kafka.Kafka'), propertiesPath(node)], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    child.unref();
    if (child.pid === undefined) throw new BrokerStartError(`Could not start ${java} for local Kafka node ${node.nodeId}.`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/**
 * Whether `pid` is alive and is the JVM of this node (its command line names this node's
 * server.properties), so a recycled pid never gets a signal meant for a broker.
 */
export function isNodeProcess(pid: number | undefined, node: NodeSpec): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync(cmdline)) return true; // no procfs (macOS): the pid file is all we have
  try {
    const text = readFileSync(cmdline, 'utf8');
    // A zombie has an empty command line: it is gone for our purposes.
    return text.includes(propertiesPath(node));
  } catch {
    return false;
  }
}

/** The last lines of the node's logs, for an error that says why it died. */
export function logTail(node: NodeSpec, lines = 12): string {
  const parts: string[] = [];
  for (const file of [logFile(node), join(node.dir, 'logs', 'stdout.log')]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8').trimEnd();
    if (text) parts.push(...text.split('\n').slice(-lines));
  }
  return parts.slice(-lines).join('\n');
}
