import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { BrokerStartError, PrerequisiteError, TimeoutError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createKafka } from '../client.js';
import { ensureKafkaJars, kafkaVersion } from './jars.js';
import { isNodeProcess, logTail, prepareNode, spawnNode, logFile } from './node-process.js';
import { freePorts, isPortFree } from './ports.js';
import { checkJava } from './prerequisites.js';
import { portsFrom, type NodeSettings, type NodeSpec } from './properties.js';

/**
 * A local Apache Kafka cluster (KRaft, combined broker+controller nodes, 127.0.0.1 only) whose
 * state lives in one folder: cluster.json (topology and pids) and node-N/ (config, data, logs).
 * Only processes recorded there, and verified to be those nodes, are ever signalled.
 */
export interface LocalClusterOptions {
  /** The cluster's folder. */
  dir: string;
  /** Folder of cached jars, one sub-folder per version. */
  cacheDir: string;
  brokers?: 1 | 3;
  /** First client port; 0 picks free ports. */
  port?: number;
  version?: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  /** Extra server.properties for every node, e.g. a shorter broker.session.timeout.ms for fault tests. */
  settings?: NodeSettings;
}

export interface NodeState extends NodeSpec {
  pid?: number;
}

export interface ClusterState {
  version: string;
  clusterId: string;
  nodes: NodeState[];
}

export interface ClusterStatus extends ClusterState {
  dir: string;
  bootstrap: string;
  running: NodeState[];
  stopped: NodeState[];
}

const STATE_FILE = 'cluster.json';

export function readClusterState(dir: string): ClusterState | undefined {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
}

function writeClusterState(dir: string, state: ClusterState): void {
  writeFileSync(join(dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
}

export function bootstrapOf(state: ClusterState): string {
  return state.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
}

export function clusterStatus(dir: string): ClusterStatus | undefined {
  const state = readClusterState(dir);
  if (!state) return undefined;
  const running = state.nodes.filter((n) => isNodeProcess(n.pid, n));
  const stopped = state.nodes.filter((n) => !running.includes(n));
  return { ...state, dir, bootstrap: bootstrapOf(state), running, stopped };
}

async function planNodes(dir: string, brokers: number, port: number): Promise<NodeSpec[]> {
  const ports =
    port === 0
      ? await freePorts(brokers * 2).then((p) => p.slice(0, brokers).map((q, i) => ({ port: q, controllerPort: p[brokers + i]! })))
      : portsFrom(port, brokers);
  for (const { port: p, controllerPort } of ports) {
    for (const candidate of [p, controllerPort]) {
      if (!(await isPortFree(candidate))) {
        throw new PrerequisiteError(
          `Port ${candidate} on 127.0.0.1 is taken by another process. Pick other ports with --port P ` +
            `(a cluster uses ports from P for clients and from P+100 for its controllers).`,
          { context: { port: candidate } },
        );
      }
    }
  }
  return ports.map((p, i) => ({ nodeId: i + 1, ...p, dir: join(dir, `node-${i + 1}`) }));
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/** Resolves once a metadata request lists every node; fails fast if a node's JVM dies. */
async function waitUntilServing(state: ClusterState, logger: Logger, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const quiet = logger.child({ component: 'local-kafka' }, { level: 'silent' });
  while (Date.now() < deadline) {
    // A node that could not bind a port takes half a minute to shut down: its log says so at once.
    for (const node of state.nodes) {
      const taken = bindFailure(node);
      if (taken === undefined) continue;
      throw new PortTakenError(
        `Port ${taken} on 127.0.0.1 was taken by another process while local Kafka node ${node.nodeId} started. ` +
          `Pick other ports with --port P (a cluster uses ports from P for clients and from P+100 for its controllers).`,
        { context: { nodeId: node.nodeId, port: taken } },
      );
    }
    const dead = state.nodes.find((n) => !isNodeProcess(n.pid, n));
    if (dead) {
      throw new BrokerStartError(
        `Local Kafka node ${dead.nodeId} exited while starting; its log (${logFile(dead)}) ends with:\n${logTail(dead)}`,
        { context: { nodeId: dead.nodeId } },
      );
    }
    if (await canConnect(state.nodes[0]!.port)) {
      const admin = createKafka({
        brokers: [bootstrapOf(state).split(',')[0]!],
        logger: quiet,
        kafka: { connectionTimeout: 1_000, requestTimeout: 5_000, retry: { retries: 0 } },
      }).admin();
      try {
        await admin.connect();
        const { brokers } = await admin.describeCluster();
        if (brokers.length === state.nodes.length) return;
      } catch {
        // not serving yet
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new TimeoutError(
    `The local Kafka cluster did not answer a metadata request within ${timeoutMs} ms; see ${logFile(state.nodes[0]!)}.`,
  );
}

/** A node's start failed because one of its ports was bound by someone else meanwhile. */
class PortTakenError extends PrerequisiteError {}

/** The port a node's log says it could not bind, if that is why it stopped. */
function bindFailure(node: NodeSpec): number | undefined {
  const file = logFile(node);
  if (!existsSync(file)) return undefined;
  const match = /failed to bind to [^\s:]*:(\d+)/i.exec(readFileSync(file, 'utf8'));
  return match ? Number(match[1]) : undefined;
}

export interface StartResult {
  status: ClusterStatus;
  alreadyRunning: boolean;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<StartResult> {
  const { dir, cacheDir, brokers = 1, port = 9092, logger, env = process.env, startTimeoutMs = 120_000 } = options;
  const version = options.version ?? kafkaVersion(env);
  const existing = clusterStatus(dir);
  if (existing && existing.running.length > 0) {
    if (existing.stopped.length === 0) {
      await waitUntilServing(existing, logger, startTimeoutMs);
      return { status: existing, alreadyRunning: true };
    }
    logger.warn({ dir }, 'local Kafka cluster is partly running; restarting all of its nodes');
    await stopLocalCluster({ dir, logger });
  }

  const java = checkJava(env);
  const libs = await ensureKafkaJars({ version, cacheDir, logger, env });
  mkdirSync(dir, { recursive: true });

  let previous = readClusterState(dir);
  if (previous && (previous.nodes.length !== brokers || previous.version !== version)) {
    logger.warn(
      { dir, was: { brokers: previous.nodes.length, version: previous.version }, now: { brokers, version } },
      'local Kafka cluster changes shape or version: its old data is discarded',
    );
    for (const node of previous.nodes) rmSync(node.dir, { recursive: true, force: true });
    previous = undefined;
  }
  // Reuse the ports a cluster had unless asked for others, so its data (and clients) stay valid.
  const reuse = previous && (options.port === undefined || options.port === previous.nodes[0]!.port);
  const chosenPort = reuse ? previous!.nodes[0]!.port : port;
  const clusterId = previous?.clusterId ?? randomClusterId();

  logger.info({ brokers, version, dir }, `starting local Kafka ${version} (${brokers} node${brokers > 1 ? 's' : ''})…`);
  // Ports picked by the OS (port 0) are free when picked, but an outgoing connection may take
  // one before the JVM binds it: then the start is tried again on new ones.
  for (let attempt = 1; ; attempt++) {
    const nodes = await planNodes(dir, brokers, chosenPort);
    const state: ClusterState = { version, clusterId, nodes };
    for (const node of nodes) prepareNode(java, libs, node, nodes, state.clusterId, options.settings);
    for (const node of state.nodes) node.pid = spawnNode(java, libs, node);
    writeClusterState(dir, state);
    try {
      await waitUntilServing(state, logger, startTimeoutMs);
      return { status: clusterStatus(dir)!, alreadyRunning: false };
    } catch (error) {
      await stopLocalCluster({ dir, logger });
      if (!(error instanceof PortTakenError && chosenPort === 0 && attempt < 3)) throw error;
      logger.warn({ dir, attempt }, `${error.message} Trying again on other ports.`);
      for (const node of nodes) rmSync(join(node.dir, 'logs'), { recursive: true, force: true });
    }
  }
}

/**
 * A KRaft cluster id: 16 random bytes, base64url. Like Kafka's own Uuid.randomUuid, it never
 * starts with "-", which the storage tool would read as a flag.
 */
export function randomClusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export interface StopOptions {
  dir: string;
  logger: Logger;
  /** Graceful shutdown budget before SIGKILL. */
  timeoutMs?: number;
}

/** Stops the nodes this folder started; returns how many were running. */
export async function stopLocalCluster({ dir, logger, timeoutMs = 20_000 }: StopOptions): Promise<number> {
  const state = readClusterState(dir);
  if (!state) return 0;
  const running = state.nodes.filter((n) => isNodeProcess(n.pid, n));
  for (const node of running) process.kill(node.pid!, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (running.some((n) => isNodeProcess(n.pid, n)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const node of running.filter((n) => isNodeProcess(n.pid, n))) {
    logger.warn({ nodeId: node.nodeId, pid: node.pid }, 'local Kafka node did not stop in time; killing it');
    process.kill(node.pid!, 'SIGKILL');
  }
  const killDeadline = Date.now() + 5_000;
  while (running.some((n) => isNodeProcess(n.pid, n)) && Date.now() < killDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const node of state.nodes) delete node.pid;
  writeClusterState(dir, state);
  return running.length;
}

export interface NodeOptions {
  dir: string;
  nodeId: number;
  logger: Logger;
}

function nodeOf(dir: string, nodeId: number): { state: ClusterState; node: NodeState } {
  const state = readClusterState(dir);
  const node = state?.nodes.find((n) => n.nodeId === nodeId);
  if (!state || !node) {
    throw new PrerequisiteError(`No local Kafka node ${nodeId} in ${dir}: start the cluster first (npm run kafka -- start --brokers 3).`, {
      context: { nodeId },
    });
  }
  return { state, node };
}

/**
 * Kills one node as a crash would (SIGKILL: no controlled shutdown, no leadership handed over),
 * for fault tests. Resolves once the process is gone; false if it was not running.
 */
export async function killNode({ dir, nodeId }: NodeOptions): Promise<boolean> {
  const { state, node } = nodeOf(dir, nodeId);
  if (!isNodeProcess(node.pid, node)) return false;
  process.kill(node.pid!, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (isNodeProcess(node.pid, node) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  delete node.pid;
  writeClusterState(dir, state);
  return true;
}

/** Starts one stopped node of an existing cluster again (with its data) and waits until every node serves. */
export async function restartNode({
  dir,
  nodeId,
  logger,
  cacheDir,
  env = process.env,
  startTimeoutMs = 120_000,
}: NodeOptions & { cacheDir: string; env?: NodeJS.ProcessEnv; startTimeoutMs?: number }): Promise<void> {
  const { state, node } = nodeOf(dir, nodeId);
  if (isNodeProcess(node.pid, node)) return;
  const java = checkJava(env);
  const libs = await ensureKafkaJars({ version: state.version, cacheDir, logger, env });
  node.pid = spawnNode(java, libs, node);
  writeClusterState(dir, state);
  await waitUntilServing(state, logger, startTimeoutMs);
}
