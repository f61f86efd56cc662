import { describe, expect, it } from 'vitest';
import { formatBench } from '../../scripts/load/bench-format.js';
import { runPythonClientBench } from '../../scripts/load/bench-python.js';
import { createLogger } from '../../src/log.js';

/** `npm run bench -- --only python`: the Python client and multiprocessing.Manager measured in one run. */
describe('the python bench section', () => {
  it(
    'measures the client’s awaited, pipelined and counter calls against the Manager’s, as ratios by process count',
    { timeout: 120_000 },
    async () => {
      const lines: string[] = [];
      const report = await runPythonClientBench({
        reps: 1,
        quick: true,
        processes: [1],
        logger: createLogger({ level: 'silent' }),
        say: (l) => lines.push(l),
      });
      const row = report.opsPerSec['1']!;
      for (const measure of ['wharf.awaited', 'wharf.pipelined', 'wharf.counter', 'manager.awaited', 'manager.counter'] as const) {
        expect(row[measure], measure).toBeGreaterThan(0);
      }
      const ratios = report.clientVsManager['1']!;
      expect(ratios.awaited).toBeCloseTo(row['wharf.awaited']! / row['manager.awaited']!, 1);
      expect(ratios.pipelined).toBeCloseTo(row['wharf.pipelined']! / row['manager.awaited']!, 1);
      expect(ratios.counter).toBeCloseTo(row['wharf.counter']! / row['manager.counter']!, 1);
      expect(lines.some((l) => l.startsWith('python: rep 1/1'))).toBe(true);
      const text = formatBench(
        {
          startedAt: 'now',
          durationS: 1,
          quick: true,
          reps: 1,
          machine: { cpus: 2, model: 'cpu', node: 'v20', loadavgStart: [1], loadavgEnd: [1] },
          brokers: [],
          python: report,
        },
        null,
      );
      expect(text).toMatch(/\(5\) the Python client/);
      expect(text).toMatch(/exact counter add \(add \/ Value \+ Lock\)/);
    },
  );

  it('reports a Python that cannot run as the section’s error, with what to do', async () => {
    await expect(
      runPythonClientBench({
        reps: 1,
        quick: true,
        processes: [1],
        logger: createLogger({ level: 'silent' }),
        python: '/nonexistent/python3',
      }),
    ).rejects.toMatchObject({
      code: 'ERR_BENCH_PYTHON',
      message: expect.stringMatching(/could not be run .*install python3 3\.9\+, or set WHARF_PYTHON/),
    });
  });
});
