import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WharfError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import { packageRoot } from '../../src/paths.js';
import { startAdminServer } from '../../src/admin/server.js';
import { adminStateApi } from '../../src/admin/state.js';
import { createStateStore } from '../../src/state/store.js';
import { standInSupervisor } from './stand-in-supervisor.js';

/**
 * The Python client (clients/python) against Python's own multiprocessing.Manager: what a Python
 * service chooses between. A store behind an admin socket, as `npm start` serves it, stands in
 * for the supervisor (no broker, no workers: only shared state is measured), and
 * scripts/bench/python_client.py measures both sides with interleaved reps.
 */
export type PythonMeasure = 'wharf.awaited' | 'wharf.pipelined' | 'wharf.counter' | 'manager.awaited' | 'manager.counter';

export interface PythonClientBenchReport {
  python: string;
  /** The python3 that ran it. */
  executable: string;
  reps: number;
  quick: boolean;
  /** Calls in flight in the pipelined measure. */
  window: number;
  unit: string;
  /** Medians by process count, then measure. */
  opsPerSec: Record<string, Partial<Record<PythonMeasure, number>>>;
  /** [min, max] over the reps, same keys. */
  spread: Record<string, Partial<Record<PythonMeasure, [number, number]>>>;
  /**
   * The client's rate ÷ the Manager's, by process count: awaited `m[k] = v` vs `d[k] = v`,
   * pipelined vs the Manager's awaited (a Manager cannot pipeline), `counter.add(1)` vs a Manager
   * Value under a Manager Lock.
   */
  clientVsManager: Record<string, { awaited: number | null; pipelined: number | null; counter: number | null }>;
  loadavg: string[];
}

export interface PythonBenchOptions {
  reps: number;
  quick: boolean;
  /** Process counts, each measured on both sides (default 1 and 4). */
  processes?: readonly number[];
  logger: Logger;
  /** Progress lines from the Python side. */
  say?(line: string): void;
  python?: string;
}

const SIZES = { full: { awaited: 3_000, pipelined: 30_000 }, quick: { awaited: 600, pipelined: 6_000 } };

export async function runPythonClientBench({
  reps,
  quick,
  processes = [1, 4],
  logger,
  say,
  python = process.env.WHARF_PYTHON || 'python3',
}: PythonBenchOptions): Promise<PythonClientBenchReport> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-py-'));
  const store = createStateStore({ logger });
  const { status, scale } = standInSupervisor();
  try {
    const server = await startAdminServer({ api: { state: adminStateApi(store), status, scale }, dir, logger, env: {} });
    try {
      const sizes = quick ? SIZES.quick : SIZES.full;
      const args = [
        join(packageRoot(), 'scripts/bench/python_client.py'),
        '--json',
        '--reps',
        String(reps),
        '--processes',
        processes.join(','),
        '--ops-awaited',
        String(sizes.awaited),
        '--ops-pipelined',
        String(sizes.pipelined),
      ];
      const out = await runPython(python, args, { ...process.env, WHARF_HOME: dir, WHARF_AUTHKEY: '' }, say);
      if (out.wharfCall !== undefined && !String(out.wharfCall).startsWith('state.call')) {
        throw new WharfError(
          'ERR_BENCH_PYTHON',
          `the Python client did not use state.call (${String(out.wharfCall)}): the figures would not be the client's`,
        );
      }
      const opsPerSec = out.opsPerSec as PythonClientBenchReport['opsPerSec'];
      const ratio = (a?: number, b?: number) => (a && b ? Math.round((a / b) * 100) / 100 : null);
      const clientVsManager = Object.fromEntries(
        Object.entries(opsPerSec).map(([count, row]) => [
          count,
          {
            awaited: ratio(row['wharf.awaited'], row['manager.awaited']),
            pipelined: ratio(row['wharf.pipelined'], row['manager.awaited']),
            counter: ratio(row['wharf.counter'], row['manager.counter']),
          },
        ]),
      );
      return {
        python: String(out.python),
        executable: python,
        reps,
        quick,
        window: Number(out.window),
        unit: 'operations per second, all processes together, median of reps',
        opsPerSec,
        spread: out.spread as PythonClientBenchReport['spread'],
        clientVsManager,
        loadavg: out.loadavg as string[],
      };
    } finally {
      await server.close();
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs python_client.py; resolves with its JSON, or a WharfError with the last line it printed. */
function runPython(python: string, args: string[], env: NodeJS.ProcessEnv, say?: (line: string) => void): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      for (const line of d.toString('utf8').split('\n')) if (line.trim()) say?.(`python: ${line.trim()}`);
    });
    child.on('error', (error) =>
      reject(
        new WharfError('ERR_BENCH_PYTHON', `${python} could not be run (${error.message}): install python3 3.9+, or set WHARF_PYTHON`, {
          cause: error,
        }),
      ),
    );
    child.on('close', (code) => {
      if (code !== 0)
        return reject(
          new WharfError(
            'ERR_BENCH_PYTHON',
            `scripts/bench/python_client.py exited with ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}`,
          ),
        );
      try {
        resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>);
      } catch (error) {
        reject(
          new WharfError('ERR_BENCH_PYTHON', `scripts/bench/python_client.py printed no JSON object (${(error as Error).message})`, {
            cause: error,
          }),
        );
      }
    });
  });
}
