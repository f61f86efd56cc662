/**
 * The Python client against Python's multiprocessing.Manager, alone (also `npm run bench -- --only python`):
 *
 *   npm run build && node dist/scripts/bench/python-client.js [--json] [--reps 3] [--quick] [--processes 1,4]
 *
 * Serves a state store on an admin socket of its own, as `npm start` would, and runs
 * scripts/bench/python_client.py against it. To measure against a running supervisor instead,
 * run that script yourself: `python3 scripts/bench/python_client.py` from the supervisor's folder.
 */
import { parseArgs } from 'node:util';
import { runPythonClientBench } from '../../src/load/bench-python.js';
import { formatPythonBench } from '../../src/load/bench-format.js';
import { createLogger } from '../../src/log.js';

const { values } = parseArgs({
  options: { json: { type: 'boolean', default: false }, reps: { type: 'string', default: '3' }, quick: { type: 'boolean', default: false }, processes: { type: 'string', default: '1,4' } },
  strict: true,
});
const reps = Number(values.reps);
const processes = values.processes!.split(',').map(Number);
if (!Number.isInteger(reps) || reps < 1 || processes.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error('--reps must be a positive integer, --processes a comma-separated list of them');
  process.exit(2);
}
try {
  const report = await runPythonClientBench({ reps, quick: values.quick!, processes, logger: createLogger({ level: 'warn', fd: 2 }), say: (line) => void process.stderr.write(`${line}\n`) });
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatPythonBench(report).join('\n')}\n`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
