import { existsSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { jarCacheDir, localClusterDir } from '../kafka/broker.js';
import { clusterStatus, startLocalCluster, stopLocalCluster, type ClusterStatus } from '../kafka/local/cluster.js';
import { isValidKafkaVersion, kafkaVersion } from '../kafka/local/jars.js';
import { logFile } from '../kafka/local/node-process.js';
import { choiceFlag, intFlag, parseFlags, writeJson, type Command, type CommandContext } from './args.js';

const HELP = `Usage: npm run kafka -- <command> [flags]      (or: wharf kafka <command>)

The local Apache Kafka broker (KRaft, 127.0.0.1 only), fetched from the Maven registry on first use.

Commands:
  start    start the broker (or cluster) and print its bootstrap address; reports one already running
  stop     stop the broker processes this folder started
  status   say what runs where
  logs     print the end of a node's broker log

Flags:
  --brokers 1|3         nodes to run (start; default 1). 3 gives replication factor 3, min.insync.replicas 2
  --port P              first client port (start; default 9092); controllers use P+100…
  --kafka-version V     Apache Kafka release (start; default ${kafkaVersion({})}, or WHARF_KAFKA_VERSION), e.g. 3.9.1
  --dir D               cluster folder (default .wharf/kafka/cluster)
  --node N              which node's log (logs; default 1)
  --lines N             how many lines (logs; default 50)
  --follow              keep printing new lines (logs)
  --json                one JSON object on stdout (start, stop, status)
  -h, --help            this help
`;

const FLAGS = {
  brokers: { type: 'string' },
  port: { type: 'string' },
  'kafka-version': { type: 'string' },
  dir: { type: 'string' },
  node: { type: 'string' },
  lines: { type: 'string' },
  follow: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ALLOWED: Record<string, readonly (keyof typeof FLAGS)[]> = {
  start: ['brokers', 'port', 'kafka-version', 'dir', 'json'],
  stop: ['dir', 'json'],
  status: ['dir', 'json'],
  logs: ['dir', 'node', 'lines', 'follow'],
};

function describe(status: ClusterStatus) {
  return {
    version: status.version,
    dir: status.dir,
    bootstrap: status.bootstrap,
    nodes: status.nodes.map((n) => ({
      nodeId: n.nodeId,
      port: n.port,
      controllerPort: n.controllerPort,
      pid: status.running.includes(n) ? n.pid : null,
      running: status.running.includes(n),
    })),
  };
}

async function run({ argv, env, stdout, logger }: CommandContext): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS, 'npm run kafka', { positionals: 1 });
  const sub = positionals[0];
  if (values.help || sub === 'help') {
    stdout.write(HELP);
    return 0;
  }
  if (!sub) throw new UsageError('Missing command: use start, stop, status or logs. Run `npm run kafka -- --help`.');
  const allowed = Object.hasOwn(ALLOWED, sub) ? ALLOWED[sub] : undefined;
  if (!allowed) throw new UsageError(`Unknown command "${sub}": use start, stop, status or logs. Run \`npm run kafka -- --help\`.`);
  for (const flag of Object.keys(values) as (keyof typeof FLAGS)[]) {
    if (flag !== 'help' && !allowed.includes(flag))
      throw new UsageError(`--${flag} does not apply to \`kafka ${sub}\`. Run \`npm run kafka -- --help\`.`);
  }
  const dir = values.dir ? resolve(values.dir) : localClusterDir(env);
  const dirFlag = values.dir ? ` --dir ${values.dir}` : '';

  if (sub === 'start') {
    const brokers = Number(choiceFlag(values.brokers, 'brokers', ['1', '3'], '1')) as 1 | 3;
    const port = values.port === undefined ? undefined : intFlag(values.port, 'port', { min: 1024, max: 65_435, fallback: 9092 });
    const version = values['kafka-version'] ?? kafkaVersion(env);
    if (!isValidKafkaVersion(version)) throw new UsageError(`--kafka-version must be a release like 4.4.0 or 3.9.1; got "${version}".`);
    const started = Date.now();
    const { status, alreadyRunning } = await startLocalCluster({ dir, cacheDir: jarCacheDir(env), brokers, port, version, logger, env });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (values.json) writeJson(stdout, { ...describe(status), alreadyRunning, startSeconds: Number(seconds) });
    else if (alreadyRunning) stdout.write(`Kafka ${status.version} is already running at ${status.bootstrap} (${dir}).\n`);
    else
      stdout.write(
        `Kafka ${status.version} is running at ${status.bootstrap} (${status.nodes.length} node${status.nodes.length > 1 ? 's' : ''}, started in ${seconds} s).\nUse it with KAFKA_BROKERS=${status.bootstrap}; stop it with \`npm run kafka -- stop${dirFlag}\`.\n`,
      );
    return 0;
  }

  if (sub === 'stop') {
    const stopped = await stopLocalCluster({ dir, logger });
    if (values.json) writeJson(stdout, { dir, stopped });
    else
      stdout.write(
        stopped
          ? `Stopped ${stopped} local Kafka node${stopped > 1 ? 's' : ''} (${dir}).\n`
          : `No local Kafka broker was running in ${dir}.\n`,
      );
    return 0;
  }

  const status = clusterStatus(dir);
  if (sub === 'status') {
    if (values.json) writeJson(stdout, status ? { running: status.running.length > 0, ...describe(status) } : { running: false, dir });
    else if (!status || status.running.length === 0)
      stdout.write(`No local Kafka broker is running (${dir}). Start one with \`npm run kafka -- start\`.\n`);
    else {
      stdout.write(`Kafka ${status.version} at ${status.bootstrap} (${dir})\n`);
      for (const n of status.nodes) {
        const running = status.running.includes(n);
        stdout.write(
          `  node ${n.nodeId}  port ${n.port}  controller ${n.controllerPort}  ${running ? `running (pid ${n.pid})` : 'stopped'}\n`,
        );
      }
    }
    // Scripts can test `kafka status` like a health check.
    return status && status.running.length > 0 ? 0 : 3;
  }

  // logs
  const node = status?.nodes.find((n) => n.nodeId === intFlag(values.node, 'node', { min: 1, max: 3, fallback: 1 }));
  if (!node || !existsSync(logFile(node))) throw new UsageError(`No broker log in ${dir}: has the local broker been started there?`);
  const lines = intFlag(values.lines, 'lines', { min: 1, max: 100_000, fallback: 50 });
  const text = readFileSync(logFile(node), 'utf8');
  stdout.write(
    text
      .split('\n')
      .slice(-lines - 1)
      .join('\n'),
  );
  if (!values.follow) return 0;
  let offset = statSync(logFile(node)).size;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const size = existsSync(logFile(node)) ? statSync(logFile(node)).size : 0;
    if (size < offset) offset = 0; // rolled over
    if (size === offset) continue;
    const fd = openSync(logFile(node), 'r');
    const buffer = Buffer.alloc(size - offset);
    readSync(fd, buffer, 0, buffer.length, offset);
    closeSync(fd);
    stdout.write(buffer);
    offset = size;
  }
}

export const kafkaCommand: Command = { name: 'kafka', summary: 'start, stop and inspect the local Apache Kafka broker', run };
