import type { BenchReport, RoundTrip } from './bench.js';
import { formatClusterBench } from './bench-cluster.js';
import type { PythonClientBenchReport } from './bench-python.js';
import type { Sampled } from './bench-stats.js';

/** The benchmark's table for people: medians, their spread, and each ratio against its target. */
const n = (v: number | null | undefined, digits = 0) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? '—'
    : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const x = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(2)}×`);
const spread = (s: Sampled, digits = 0) => `${n(s.median, digits)} (${n(s.min, digits)}–${n(s.max, digits)})`;
const verdict = (value: number | null, target: number) =>
  value === null ? 'not measured' : value >= target ? `met (≥ ${target}×)` : `missed (${value}×, target ≥ ${target}×)`;

const ratioList = (ratios: Record<string, number | null>) =>
  Object.entries(ratios)
    .map(([k, v]) => `${k} ${x(v)}`)
    .join(', ');

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

function drainTable(variants: Record<string, { msgsPerSec: Sampled; drainS: Sampled; startupS: Sampled }>): string[] {
  const widths = [22, 28, 20, 10];
  return [
    row(['variant', 'msg/s median (min–max)', 'drain s (min–max)', 'startup s'], widths),
    ...Object.entries(variants).map(([name, v]) => row([name, spread(v.msgsPerSec), spread(v.drainS, 2), n(v.startupS.median, 1)], widths)),
  ];
}

function roundTripLines(label: string, r: RoundTrip): string[] {
  const widths = [22, 24, 24, 24, 6];
  return [
    `  ${label}, ${n(r.messages)} requests`,
    '  ' + row(['responder', 'answered/s (min–max)', 'p50 ms (min–max)', 'p99 ms (min–max)', 'lost'], widths),
    ...(['wharf', 'kafkajs'] as const).map(
      (k) =>
        '  ' +
        row(
          [
            k === 'wharf' ? 'wharf (Jarvis, 1 worker)' : 'bare kafkajs thread',
            spread(r[k].perSec),
            spread(r[k].p50, 2),
            spread(r[k].p99, 2),
            n(r[k].lost),
          ],
          widths,
        ),
    ),
    `  wharf ÷ kafkajs throughput: ${x(r.wharfVsKafkajs)}`,
  ];
}

export function formatBench(report: BenchReport, file: string | null): string {
  const m = report.machine;
  const out: string[] = [
    `wharf bench ${report.quick ? '(--quick) ' : ''}${report.http === false ? '(--http off) ' : ''}— ${report.startedAt}, ${report.durationS} s, median of ${report.reps} interleaved reps`,
    `machine: ${m.cpus} × ${m.model}, Node ${m.node}, load average ${m.loadavgStart.map((l) => l.toFixed(2)).join(' ')} at start, ${m.loadavgEnd.map((l) => l.toFixed(2)).join(' ')} at end; broker ${report.brokers.join(',')}`,
    '',
  ];
  if (report.consume) {
    const c = report.consume;
    out.push(
      `(1) consume ${n(c.messages)} small messages from a ${c.partitions}-partition topic, no-op handler (msg/s once the group is stable)`,
    );
    out.push(...drainTable(c.variants).map((l) => `  ${l}`));
    out.push(`  wharf ÷ hand-written kafkajs (JSON): ${x(c.wharfVsHandWritten)} — ${verdict(c.wharfVsHandWritten, c.target)}`);
    out.push(`  wharf ÷ kafkajs eachMessage:         ${x(c.wharfVsEachMessage)} — ${verdict(c.wharfVsEachMessage, c.targetVsEachMessage)}`);
    out.push(`  wharf ÷ kafkajs eachBatch:           ${x(c.wharfVsEachBatch)}`, '');
  }
  if (report.scaling) {
    const s = report.scaling;
    out.push(`(2) CPU-bound handler (${s.msPerMessage} ms of SHA-256 per message), ${n(s.messages)} messages, ${s.partitions} partitions`);
    out.push(...drainTable(s.variants).map((l) => `  ${l}`));
    out.push(`  vs the bare kafkajs consumer: ${ratioList(s.vsKafkajs)}`);
    out.push(`  vs the machine's ceiling (plain threads, no Kafka): ${ratioList(s.vsCeiling)}`);
    out.push(`  2 workers ÷ 2-thread ceiling: ${verdict(s.vsCeiling['wharf, 2 workers'] ?? null, s.target)}`, '');
  }
  if (report.pool) {
    const p = report.pool;
    out.push(
      `(2b) key-ordered pool, 1 consumer worker (${p.msPerMessage} ms of SHA-256 per message), ${n(p.messages)} messages, ${p.partitions} partitions`,
    );
    out.push(...drainTable(p.variants).map((l) => `  ${l}`));
    out.push(`  vs the bare kafkajs consumer: ${ratioList(p.vsKafkajs)}`);
    out.push(`  vs the machine's ceiling: ${ratioList(p.vsCeiling)}`);
    out.push(`  pool, 2 threads ÷ 2-thread ceiling: ${verdict(p.vsCeiling['pool, 2 threads'] ?? null, p.target)}`, '');
  }
  if (report.state) {
    out.push('(3) shared state (scripts/bench/state.ts): operations/s, all workers together');
    if ('error' in report.state) out.push(`  not measured: ${report.state.error}`, '');
    else {
      const widths = [8, 36, 12, 10, 12, 8];
      out.push('  ' + row(['workers', 'measure', 'wharf', 'comlink', 'python', 'w/py'], widths));
      for (const r of report.state.rows) {
        out.push(
          '  ' +
            row(
              [String(r.workers), r.measure, n(r.wharf), n(r.comlink), n(r.python), x(r.wharfVsPython ?? r.wharfVsPythonAwaited)],
              widths,
            ),
        );
      }
      out.push(
        `  python: ${report.state.python ?? report.state.pythonError}; pipelined w/py compares with Python's awaited calls (a Manager cannot pipeline)`,
        '',
      );
    }
  }
  if (report.roundtrip) {
    out.push('(4) request/reply round trip through Jarvis vs a bare kafkajs responder (both one thread, same partitions)');
    const { awaited, pipelined } = report.roundtrip;
    if (awaited) out.push(...roundTripLines('awaited one at a time', awaited));
    if (pipelined) out.push(...roundTripLines(`${pipelined.inFlight} in flight`, pipelined), '');
    const c = report.roundtrip.capacity;
    if (c) {
      out.push(`  capacity: the highest rate of ${n(c.size)}-byte requests whose p99 stays under ${c.p99LimitMs} ms (${c.stepS} s a step)`);
      for (const k of ['wharf', 'kafkajs'] as const) {
        const ladders = c[k].ladders.map((l) => n(l.highestRate)).join(', ');
        out.push(
          `  ${(k === 'wharf' ? 'wharf (Jarvis, 1 worker)' : 'bare kafkajs thread').padEnd(26)} ${n(c[k].highestRate).padStart(7)}/s  (ladders: ${ladders})`,
        );
      }
      out.push(`  wharf ÷ kafkajs capacity: ${x(c.wharfVsKafkajs)} — ${verdict(c.wharfVsKafkajs, c.target)}`, '');
    }
  }
  if (report.python) {
    out.push('(5) the Python client (clients/python) vs multiprocessing.Manager: operations/s, all processes together');
    if ('error' in report.python) out.push(`  not measured: ${report.python.error}`, '');
    else out.push(...formatPythonBench(report.python).map((l) => `  ${l}`), '');
  }
  if (report.cluster) {
    out.push("(6) a deployment's shared state (docs/cluster.md): persisted counter adds/s, and failover");
    if ('error' in report.cluster) out.push(`  not measured: ${report.cluster.error}`, '');
    else out.push(...formatClusterBench(report.cluster).map((l) => `  ${l}`), '');
  }
  if (file) out.push(`results: ${file}`);
  return out.join('\n') + '\n';
}

/** The Python section's table, also printed by dist/scripts/bench/python-client.js alone. */
export function formatPythonBench(r: PythonClientBenchReport): string[] {
  const line = (cells: string[]) =>
    [cells[0]!.padStart(9), cells[1]!.padEnd(44), ...cells.slice(2, 4).map((c) => c.padStart(24)), cells[4]!.padStart(7)].join('  ');
  const cell = (count: string, measure: keyof PythonClientBenchReport['opsPerSec'][string]) => {
    const [min, max] = r.spread[count]?.[measure] ?? [NaN, NaN];
    return `${n(r.opsPerSec[count]?.[measure])} (${n(min)}–${n(max)})`;
  };
  const lines = [line(['processes', 'measure', 'wharf client (min–max)', 'Manager (min–max)', 'ratio'])];
  for (const [count, ratios] of Object.entries(r.clientVsManager)) {
    lines.push(
      line([
        count,
        'awaited round trip (m[k] = v / d[k] = v)',
        cell(count, 'wharf.awaited'),
        cell(count, 'manager.awaited'),
        x(ratios.awaited),
      ]),
    );
    lines.push(
      line([
        count,
        `pipelined, ${r.window} in flight (vs awaited)`,
        cell(count, 'wharf.pipelined'),
        cell(count, 'manager.awaited'),
        x(ratios.pipelined),
      ]),
    );
    lines.push(
      line([
        count,
        'exact counter add (add / Value + Lock)',
        cell(count, 'wharf.counter'),
        cell(count, 'manager.counter'),
        x(ratios.counter),
      ]),
    );
  }
  lines.push(
    `Python ${r.python} (${r.executable}), median of ${r.reps} interleaved reps${r.quick ? ' (--quick)' : ''}, load average ${r.loadavg.join(' ')} at the end; a Manager cannot pipeline`,
  );
  return lines;
}
