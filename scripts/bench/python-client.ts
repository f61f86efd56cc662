/**
 * The Python client against Python's multiprocessing.Manager, alone (also `npm run bench -- --only python`):
 *
 *   npm run build && node dist/scripts/bench/python-client.js [--json] [--reps 3] [--quick] [--processes 1,4]
 *
 * Serves a state store on an admin socket of its own, as `npm start` would, and runs
 * scripts/bench/python_client.py against it. To measure against a running supervisor instead,
 * run that script yourself: `python3 scripts/bench/python_client.py` from the supervisor's folder.
 */
import { runPythonClientBench } from '../load/bench-python.js';
import { formatPythonBench } from '../load/bench-format.js';
import { createLogger } from '../../src/log.js';
import { benchFlags, countFlag, countListFlag, HELP_FLAG, parseFlags } from './flags.js';

const COMMAND = 'node dist/scripts/bench/python-client.js';
const USAGE = `Usage: ${COMMAND} [--json] [--reps N] [--quick] [--processes LIST]

The Python client (clients/python) against Python's multiprocessing.Manager: awaited, pipelined and counter calls.
  --reps N           repetitions, the median reported (default 3)
  --quick            fewer calls per measure
  --processes LIST   Python processes at once, comma-separated (default 1,4)
  --json             one JSON object on stdout
  -h, --help         this help
`;
const values = benchFlags(USAGE, (argv) =>
  parseFlags(argv, { json: { type: 'boolean', default: false }, reps: { type: 'string' }, quick: { type: 'boolean', default: false }, processes: { type: 'string', default: '1,4' }, ...HELP_FLAG }, COMMAND).values,
);
const reps = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 3 });
const processes = countListFlag(COMMAND, values.processes, 'processes', { min: 1, max: 64 });
try {
  const report = await runPythonClientBench({ reps, quick: values.quick!, processes, logger: createLogger({ level: 'warn', fd: 2 }), say: (line) => void process.stderr.write(`${line}\n`) });
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatPythonBench(report).join('\n')}\n`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
