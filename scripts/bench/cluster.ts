/**
 * A deployment's shared state, alone (also `npm run bench -- --only cluster`): a persisted counter
 * add through a store as before deployments, through the owner, and routed from a standby,
 * awaited and pipelined; and failover after the owner's SIGKILL.
 *
 *   npm run build && node dist/scripts/bench/cluster.js [--json] [--reps 3] [--quick] [--kills 3]
 */
import { resolveBroker } from '../../src/kafka/broker.js';
import { createLogger } from '../../src/log.js';
import { formatClusterBench, runClusterBench } from '../load/bench-cluster.js';
import { benchFlags, countFlag, HELP_FLAG, parseFlags } from './flags.js';

const COMMAND = 'node dist/scripts/bench/cluster.js';
const USAGE = `Usage: ${COMMAND} [--json] [--reps N] [--quick] [--kills N]

A deployment's shared state: persisted calls local, on the owner, routed from a standby; failover time.
  --reps N      repetitions, the median reported (default 3)
  --quick       one second per measure, two kills
  --kills N     owner kills for the failover measure (default 3)
  --json        one JSON object on stdout
  -h, --help    this help
`;
const values = benchFlags(USAGE, (argv) =>
  parseFlags(
    argv,
    { json: { type: 'boolean', default: false }, reps: { type: 'string' }, quick: { type: 'boolean', default: false }, kills: { type: 'string' }, ...HELP_FLAG },
    COMMAND,
  ).values,
);
const reps = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 3 });
const kills = values.kills === undefined ? undefined : countFlag(COMMAND, values.kills, 'kills', { min: 1, max: 50, fallback: 3 });
const logger = createLogger({ level: 'warn', fd: 2 });
const broker = await resolveBroker({ logger });
try {
  const report = await runClusterBench({ brokers: broker.brokers, reps, quick: values.quick!, kills, logger, say: (line) => void process.stderr.write(`${line}\n`) });
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatClusterBench(report).join('\n')}\n`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await broker.release();
}
