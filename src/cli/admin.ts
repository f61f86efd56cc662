import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { WORKER_LIMITS } from '../config/schema.js';
import { UsageError, WharfError } from '../errors.js';
import { stateHome } from '../paths.js';
import { connectAdmin, type AdminClient } from '../admin/client.js';
import { ErrorCodes, type StateChange } from '../admin/protocol.js';
import type { SupervisorStatus } from '../status.js';
import type { DeploymentStatus } from '../cluster/deployment.js';
import { DLQ_HELP, DLQ_USAGE, parseDlq, runDlq } from './admin-dlq.js';
import { LAG_HELP, runLag } from './admin-lag.js';
import { DASHBOARD_COMMAND_HELP, DASHBOARD_HELP, runDashboard } from './admin-dashboard.js';
import { intFlag, parseFlags, writeJson, type Command, type CommandContext } from './args.js';

const HELP = `Usage: npm run admin -- <command> [args] [flags]      (or: wharf admin <command>)

Inspect and steer the supervisor started from this folder (found through .wharf/admin.json).

Commands:
  state [name]              list the shared objects, or print one
  watch [name]              print changes (to one object, or all) as they happen, until Ctrl-C
  workers                   services and worker threads: health, restarts, handled, heap, heartbeat,
                            and thread pools: threads, in flight, queues, utilization
  set <name> <json-value>   set an object's value: 42, '"text"', '{"a":1}' (negative: set n -- -5)
  delete <name>             delete an object
  snapshot                  every object with its value
  scale <service> <n>       run n consumer workers for a service (${WORKER_LIMITS.consumer.min}…${WORKER_LIMITS.consumer.max}); answers once they are
                            ready, or with an error within the supervisor's readyTimeoutMs
  ping                      check that the supervisor answers
${LAG_HELP}
  cluster                   the deployment: its members, their addresses, who owns the shared state,
                            and this member's restores (docs/cluster.md)
${DLQ_HELP}${DASHBOARD_HELP}
Flags:
  --json          one JSON object on stdout (watch: one JSON object per line, per change)
  --kind K        set: the kind to create (value, map, list, counter, …); default: the object's own
  --count N       watch: stop after N changes
  --limit N       dlq list: at most N dead letters per topic, the most recent (default 100)
  --all           dlq replay: every dead letter of the topic not replayed yet
  --dir D         folder of the supervisor's connection file (default .wharf, or WHARF_HOME)
  --address A     connect to this socket path or 127.0.0.1:PORT instead of the connection file's
  --key-file F    read the authkey from F
  --timeout MS    how long to wait for the supervisor (default 5000)
  -h, --help      this help

The authkey comes from --key-file, else the 0600 key file the supervisor wrote next to its
connection file, else WHARF_AUTHKEY (for a supervisor started with WHARF_AUTHKEY set). There is
deliberately no flag for the key itself: command lines are visible to every user (ps, /proc).
Exit codes: 0 done, 1 failed (no supervisor, wrong key, unknown name or service), 2 usage error.
`;

const FLAGS = {
  json: { type: 'boolean' },
  kind: { type: 'string' },
  count: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  dir: { type: 'string' },
  address: { type: 'string' },
  'key-file': { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
type Flag = keyof typeof FLAGS;

const CONNECTION: readonly Flag[] = ['dir', 'address', 'key-file', 'timeout'];
/** Per command: its positional arguments (required, optional) and the flags it takes. */
const COMMANDS: Record<string, { args: [number, number]; usage: string; flags: readonly Flag[] }> = {
  state: { args: [0, 1], usage: 'state [name]', flags: ['json'] },
  watch: { args: [0, 1], usage: 'watch [name]', flags: ['json', 'count'] },
  workers: { args: [0, 0], usage: 'workers', flags: ['json'] },
  set: { args: [2, 2], usage: 'set <name> <json-value>', flags: ['json', 'kind'] },
  delete: { args: [1, 1], usage: 'delete <name>', flags: ['json'] },
  snapshot: { args: [0, 0], usage: 'snapshot', flags: ['json'] },
  scale: { args: [2, 2], usage: 'scale <service> <n>', flags: ['json'] },
  ping: { args: [0, 0], usage: 'ping', flags: ['json'] },
  lag: { args: [0, 0], usage: 'lag', flags: ['json'] },
  cluster: { args: [0, 0], usage: 'cluster', flags: ['json'] },
  dlq: { args: [1, 1_001], usage: DLQ_USAGE, flags: ['json', 'limit', 'all'] },
  dashboard: { args: [0, 0], usage: 'dashboard', flags: ['json'] },
};
const NAMES = Object.keys(COMMANDS).join(', ');

async function run({ argv, env, stdout, stderr }: CommandContext): Promise<number> {
  // Everything after `--` is an argument, so that `set n -- -5` can set a negative number.
  const end = argv.indexOf('--');
  const { values, positionals: before } = parseFlags(end < 0 ? argv : argv.slice(0, end), FLAGS, 'npm run admin', { positionals: 1_002 });
  const positionals = end < 0 ? before : [...before, ...argv.slice(end + 1)];
  const [sub, ...args] = positionals;
  if (values.help && sub === 'dashboard') {
    stdout.write(DASHBOARD_COMMAND_HELP);
    return 0;
  }
  if (values.help || sub === 'help') {
    stdout.write(HELP);
    return 0;
  }
  if (!sub) throw new UsageError(`Missing command: use ${NAMES}. Run \`npm run admin -- --help\`.`);
  const spec = Object.hasOwn(COMMANDS, sub) ? COMMANDS[sub] : undefined;
  if (!spec) throw new UsageError(`Unknown command "${sub}": use ${NAMES}. Run \`npm run admin -- --help\`.`);
  for (const flag of Object.keys(values) as Flag[]) {
    if (flag !== 'help' && !spec.flags.includes(flag) && !CONNECTION.includes(flag))
      throw new UsageError(`--${flag} does not apply to \`admin ${sub}\`. Run \`npm run admin -- --help\`.`);
  }
  if (args.length < spec.args[0] || args.length > spec.args[1]) throw new UsageError(`Usage: npm run admin -- ${spec.usage}`);
  // Arguments are checked before connecting, so a typo fails fast even with no supervisor.
  const value = sub === 'set' ? parseValue(args[1]!) : undefined;
  const consumers = sub === 'scale' ? parseCount(args[1]!) : 0;
  const dlq = sub === 'dlq' ? parseDlq(args, { limit: values.limit, all: values.all }) : undefined;
  const count = intFlag(values.count, 'count', { min: 1, fallback: 0 });
  const timeoutMs = intFlag(values.timeout, 'timeout', { min: 1, max: 600_000, fallback: 5_000 });
  const dir = values.dir ? resolve(values.dir) : stateHome(env);

  // Reading a dead-letter topic joins a consumer group first: give it longer than a state call.
  // A scale answers within the supervisor's readyTimeoutMs (60 s by default), which only it knows.
  const callTimeoutMs = dlq ? 120_000 : sub === 'scale' ? SCALE_CALL_TIMEOUT_MS : sub === 'lag' ? 60_000 : undefined;
  const connection = { dir, address: values.address, keyFile: values['key-file'], timeoutMs, env };
  const client = await connectAdmin({ ...connection, ...(callTimeoutMs ? { callTimeoutMs } : {}) });
  try {
    const json = values.json === true;
    const [name] = args;
    switch (sub) {
      case 'state':
        return await showState(client, name, json, stdout);
      case 'watch':
        return await watch(client, name, json, count, stdout, stderr);
      case 'lag':
        return await runLag(client, json, stdout);
      case 'dlq':
        return await runDlq(client, dlq!, json, stdout);
      case 'dashboard':
        return runDashboard(client, connection, json, stdout);
      case 'cluster': {
        if (!client.server.methods.includes('cluster.status')) {
          stdout.write(json ? '{"cluster":null}\n' : 'This supervisor persists no shared state: it is a deployment of its own.\n');
          return 0;
        }
        const status = (await client.call('cluster.status')) as DeploymentStatus;
        if (json) writeJson(stdout, status);
        else stdout.write(clusterTable(status));
        return 0;
      }
      case 'workers': {
        const status = await client.status();
        if (json) writeJson(stdout, status);
        else stdout.write(workersTable(status));
        return 0;
      }
      case 'set': {
        await client.state.set(name!, value, values.kind);
        const entry = await client.state.get(name!);
        if (json) writeJson(stdout, { name, kind: entry?.kind ?? values.kind ?? null, value });
        else stdout.write(`set ${name}${entry ? ` (${entry.kind})` : ''}\n`);
        return 0;
      }
      case 'delete': {
        if (!(await client.state.delete(name!))) throw unknownName(name!, client);
        if (json) writeJson(stdout, { name, deleted: true });
        else stdout.write(`deleted ${name}\n`);
        return 0;
      }
      case 'snapshot': {
        const objects = await client.state.snapshot();
        if (json) writeJson(stdout, { at: new Date().toISOString(), objects });
        else
          stdout.write(
            Object.entries(objects)
              .map(([n, o]) => `${n} (${o.kind}) ${JSON.stringify(o.value)}\n`)
              .join('') || 'No shared objects.\n',
          );
        return 0;
      }
      case 'scale': {
        const status = await client.scale(name!, consumers);
        const service = status.services.find((s) => s.name === name);
        if (json) writeJson(stdout, { service: service ?? null });
        else
          stdout.write(
            `${name}: ${service?.workers.consumer ?? consumers} consumer worker${consumers === 1 ? '' : 's'} (${service?.health ?? 'unknown'})\n`,
          );
        return 0;
      }
      default: {
        const started = performance.now();
        const pong = await client.ping();
        const ms = Number((performance.now() - started).toFixed(2));
        if (json) writeJson(stdout, { pid: pong.pid, address: client.address, ms });
        else stdout.write(`supervisor pid ${pong.pid} at ${client.address} answered in ${ms} ms\n`);
        return 0;
      }
    }
  } finally {
    await client.close();
  }
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`The value for \`admin set\` must be JSON (${(error as Error).message}); quote strings for the shell: '"text"'.`);
  }
}

const SCALE_CALL_TIMEOUT_MS = 15 * 60_000;

function parseCount(text: string): number {
  const { min, max } = WORKER_LIMITS.consumer;
  if (!/^\d{1,4}$/.test(text) || Number(text) < min || Number(text) > max)
    throw new UsageError(`The worker count for \`admin scale\` must be a whole number from ${min} to ${max}; got "${text}".`);
  return Number(text);
}

function unknownName(name: string, client: AdminClient): WharfError {
  return new WharfError(
    ErrorCodes.unknownName,
    `no shared object named "${name}" in the supervisor (pid ${client.server.pid}): \`npm run admin -- state\` lists them.`,
    { context: { name } },
  );
}

async function showState(client: AdminClient, name: string | undefined, json: boolean, stdout: Writable): Promise<number> {
  if (name !== undefined) {
    const entry = await client.state.get(name);
    if (!entry) throw unknownName(name, client);
    if (json) writeJson(stdout, entry);
    else stdout.write(`${name} (${entry.kind})\n${JSON.stringify(entry.value, null, 2)}\n`);
    return 0;
  }
  const objects = await client.state.describe();
  if (json) writeJson(stdout, { objects });
  else if (objects.length === 0) stdout.write(`No shared objects (supervisor pid ${client.server.pid}).\n`);
  else
    stdout.write(
      table(
        ['NAME', 'KIND', 'SIZE'],
        objects.map((o) => [o.name, o.kind, String(o.size)]),
      ),
    );
  return 0;
}

/** Streams changes until Ctrl-C, --count changes, or the supervisor going away (an error). */
async function watch(
  client: AdminClient,
  name: string | undefined,
  json: boolean,
  count: number,
  stdout: Writable,
  stderr: Writable,
): Promise<number> {
  let seen = 0;
  let stop!: (outcome: WharfError | undefined) => void;
  const stopped = new Promise<WharfError | undefined>((done) => (stop = done));
  const onSignal = () => stop(undefined);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (name !== undefined && !(await client.state.get(name))) stderr.write(`(no object named "${name}" yet: waiting for one)\n`);
    await client.state.watch(name, (change) => {
      if (json) writeJson(stdout, change);
      else stdout.write(changeLine(change));
      if (count && ++seen >= count) stop(undefined);
    });
    void client.closed.then((reason) => stop(reason ?? undefined));
    const failure = await stopped;
    if (failure) throw new WharfError(failure.code, `the supervisor closed the watch: ${failure.message}`, { cause: failure });
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function changeLine(change: StateChange): string {
  const key = change.key === undefined ? '' : `  key=${clip(JSON.stringify(change.key))}`;
  const value = change.value === undefined ? '' : `  ${clip(JSON.stringify(change.value))}`;
  return `${new Date(change.at).toISOString()}  ${change.name}  ${change.kind}  ${change.op}${key}${value}\n`;
}

function clip(text: string | undefined, max = 200): string {
  if (text === undefined) return 'undefined';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function workersTable(status: SupervisorStatus): string {
  const now = Date.now();
  const lines = [`supervisor pid ${status.pid}, up ${duration(status.uptimeMs)}, brokers ${status.brokers.join(',')}\n\n`];
  lines.push(
    table(
      ['SERVICE', 'HEALTH', 'CONSUMERS', 'PRODUCERS', 'RESTARTS', 'HANDLED'],
      status.services.map((s) => [
        s.name,
        s.health,
        String(s.workers.consumer),
        String(s.workers.producer),
        String(s.restarts),
        String(s.handled),
      ]),
    ),
  );
  for (const s of status.services) if (s.reason) lines.push(`${s.name}: ${s.reason}\n`);
  lines.push('\n');
  lines.push(
    table(
      ['WORKER', 'SERVICE', 'ROLE', 'STATE', 'RESTARTS', 'HANDLED', 'HEAP', 'LAST HEARTBEAT'],
      status.workers.map((w) => [
        w.workerId,
        w.service,
        w.role,
        w.state,
        String(w.restarts),
        String(w.handled),
        w.heapUsedBytes === null ? '-' : `${(w.heapUsedBytes / 1024 / 1024).toFixed(1)} MiB`,
        w.lastHeartbeatAt === null ? '-' : `${duration(now - Date.parse(w.lastHeartbeatAt))} ago`,
      ]),
    ),
  );
  // Consumers that run their handler in a thread pool (consumes.concurrency, docs/pool.md).
  const pooled = status.workers.filter((w) => w.pool);
  if (pooled.length > 0) {
    lines.push('\n');
    lines.push(
      table(
        [
          'POOL OF',
          'MODE',
          'THREADS',
          'IN FLIGHT',
          'RUNNING',
          'QUEUED',
          'WAITING ON KEY',
          'RETRYING',
          'UTILIZATION',
          'BUSY',
          'THREAD EXITS',
        ],
        pooled.map(({ workerId, pool: p }) => [
          workerId,
          p!.mode,
          `${p!.threads}/${p!.maxThreads}`,
          `${p!.inFlight}/${p!.maxInFlight}`,
          String(p!.running),
          String(p!.queued),
          String(p!.waitingOnKey),
          String(p!.retrying),
          `${Math.round(p!.utilization * 100)}%`,
          duration(p!.busyMs),
          String(p!.threadExits),
        ]),
      ),
    );
  }
  return lines.join('');
}

function duration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return (
    [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n'
  );
}

export const adminCommand: Command = {
  name: 'admin',
  summary: 'inspect and steer a running supervisor: state, watch, workers, scale, dlq',
  run,
};

/** Partition numbers as short ranges: 0-3,7,9-11. */
function ranges(partitions: readonly number[]): string {
  const sorted = [...partitions].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j;
  }
  return out.join(',') || '-';
}

/** `npm run admin -- cluster`: one line per member, with the partitions of the state it owns. */
function clusterTable(status: DeploymentStatus): string {
  const rows = status.members.map((m) => [
    m.partitions.length > 0 ? 'owner' : 'standby',
    m.tag === status.tag ? `${m.tag} (this one)` : m.tag,
    String(m.pid),
    ranges(m.partitions),
    m.address || '(none)',
  ]);
  const widths = [7, ...[1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length), i === 3 ? 10 : 4))];
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd() + '\n';
  const restored = status.restored
    ? `this member last restored partitions ${ranges(status.restored.partitions ?? [])}: ${status.restored.objects} objects from ${status.restored.records} records in ${status.restored.ms} ms (${status.restored.at})\n`
    : '';
  const restoring = status.restoring
    ? `this member is restoring partitions ${ranges(status.restoring.partitions)}: ${status.restoring.records.toLocaleString('en-US')} records read since ${status.restoring.startedAt}\n`
    : '';
  const unowned = status.members.length > 0 ? status.partitions - status.members.reduce((n, m) => n + m.partitions.length, 0) : 0;
  return (
    `deployment ${status.name}: ${status.members.length} member${status.members.length === 1 ? '' : 's'}, ` +
    `state in ${status.topic} (${status.partitions} partitions${unowned > 0 ? `, ${unowned} not assigned` : ''}), ` +
    `this one ${status.serving ? `serves partitions ${ranges(status.served)}` : status.role}\n` +
    line(['ROLE', 'MEMBER', 'PID', 'PARTITIONS', 'ADDRESS']) +
    rows.map(line).join('') +
    restoring +
    restored
  );
}
