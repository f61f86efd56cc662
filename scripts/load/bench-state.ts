import { spawn } from 'node:child_process';
import { WharfError } from '../../src/errors.js';
import { compiled } from '../../src/paths.js';

/**
 * The shared-state comparison is the existing benchmark (scripts/bench/state.ts: wharf's store vs
 * comlink vs Python's multiprocessing.Manager, interleaved reps); this runs it as a child process
 * so its worker threads and Python's processes never share this process's event loop.
 */
export interface StateBenchRow {
  workers: number;
  measure: string;
  wharf?: number;
  comlink?: number;
  python?: number;
  wharfVsPython: number | null;
  wharfVsComlink: number | null;
  wharfVsPythonAwaited: number | null;
}

export interface StateBenchReport {
  node: string;
  python: string | null;
  pythonError: string | null;
  reps: number;
  quick: boolean;
  unit: string;
  rows: StateBenchRow[];
  spread: Record<string, Record<string, [number, number]>>;
}

export async function runStateBench({ reps, quick }: { reps: number; quick: boolean }): Promise<StateBenchReport> {
  const args = [compiled('scripts/bench/state.js'), '--json', '--reps', String(reps), ...(quick ? ['--quick'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) {
    throw new WharfError(
      'ERR_BENCH_STATE',
      `The shared-state benchmark exited with ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}. Run \`node dist/scripts/bench/state.js\` to see it.`,
    );
  }
  try {
    return JSON.parse(stdout) as StateBenchReport;
  } catch (error) {
    throw new WharfError('ERR_BENCH_STATE', `The shared-state benchmark printed no JSON object (${(error as Error).message}).`, {
      cause: error,
    });
  }
}
