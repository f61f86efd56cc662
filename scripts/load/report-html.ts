import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LoadResult } from './run.js';
import { escapeHtml, lineChart } from './svg-chart.js';

/**
 * The HTML report of a load run: one self-contained page (inline CSS and SVG, the run's JSON in
 * a data block) that opens from disk anywhere, with no CDN and no script needed to draw it.
 */
const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } .sub { color: #666; margin-bottom: 16px; }
table { border-collapse: collapse; margin: 8px 24px 16px 0; display: inline-table; vertical-align: top; }
td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; } th { text-align: left; font-weight: 600; }
.bad { color: #b00020; font-weight: 700; } .ok { color: #137333; font-weight: 700; }
svg.chart { display: block; margin: 12px 0; } .plot { fill: #fafafa; stroke: #ccc; } .grid { stroke: #e4e4e4; }
.tick { font-size: 11px; fill: #555; } .axis { font-size: 12px; fill: #333; } .title { font-size: 14px; font-weight: 600; fill: #222; } .legend { font-size: 12px; fill: #333; }
`;

const fmt = (v: number | null, digits = 0) =>
  v === null ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function rows(entries: [string, string][]): string {
  return entries.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('\n');
}

export function renderReport(result: LoadResult): string {
  // Each point covers the time since the one before; the last one is usually shorter.
  const perSecond = (count: number, i: number) => count / Math.max(1e-3, result.timeline[i]!.t - (i > 0 ? result.timeline[i - 1]!.t : 0));
  const charts = [
    lineChart({
      title: 'Throughput',
      xLabel: 'seconds',
      yLabel: 'messages / s',
      series: [
        { name: 'sent', color: '#1a73e8', points: result.timeline.map((p, i) => [p.t, perSecond(p.sent, i)]) },
        { name: 'answered', color: '#e8710a', points: result.timeline.map((p, i) => [p.t, perSecond(p.answered, i)]) },
      ],
    }),
    lineChart({
      title: 'End-to-end latency per interval (log scale)',
      xLabel: 'seconds',
      yLabel: 'ms',
      log: true,
      series: [
        { name: 'p50', color: '#137333', points: result.timeline.map((p) => [p.t, p.p50]) },
        { name: 'p99', color: '#e8710a', points: result.timeline.map((p) => [p.t, p.p99]) },
        { name: 'max', color: '#b00020', dashed: true, points: result.timeline.map((p) => [p.t, p.max]) },
      ],
    }),
    lineChart({
      title: 'In flight and consumer lag',
      xLabel: 'seconds',
      yLabel: 'messages',
      series: [
        { name: 'in flight', color: '#1a73e8', points: result.timeline.map((p) => [p.t, p.inFlight]) },
        { name: 'consumer lag', color: '#9334e6', points: result.timeline.map((p) => [p.t, p.lag]) },
      ],
    }),
  ];
  const l = result.latencyMs;
  const lost = result.lost === 0 ? `<span class="ok">0</span>` : `<span class="bad">${fmt(result.lost)}</span>`;
  const outcome = rows([
    ['sent', fmt(result.sent)],
    ['answered', fmt(result.answered)],
    ['lost', lost],
    ['duplicates', fmt(result.duplicates)],
    ['dead-lettered', fmt(result.deadLettered)],
    ['send errors', fmt(result.sendErrors)],
    ['worker crashes', fmt(result.crashes.length)],
    ['throughput (answered/s)', fmt(result.throughput.answeredPerSec)],
    ['elapsed (s)', fmt(result.elapsedS, 1)],
  ]);
  const percentiles: [string, string][] = [
    ['p50', fmt(l.p50, 2)],
    ['p90', fmt(l.p90, 2)],
    ['p99', fmt(l.p99, 2)],
    ['p99.9', fmt(l.p999, 2)],
    ['max', fmt(l.max, 2)],
    ['mean', fmt(l.mean, 2)],
  ].map(([k, v]) => [`${k} (ms)`, v!]);
  const latency = rows(
    result.warmupS > 0 ? [['warm-up', `requests due in the first ${fmt(result.warmupS, 1)} s left out`], ...percentiles] : percentiles,
  );
  const setup = rows([
    ['service', escapeHtml(result.service)],
    ['consumer workers', fmt(result.workers)],
    ['partitions', fmt(result.partitions)],
    ['rate (msg/s)', result.rate === null ? `unlimited, ${fmt(result.maxInFlight)} in flight` : fmt(result.rate)],
    ['size (bytes)', fmt(result.size)],
    ['keys', fmt(result.keys)],
    ['brokers', escapeHtml(result.brokers.join(', '))],
    ['machine', escapeHtml(`${result.machine.cpus} CPUs, Node ${result.machine.node}, load average ${result.machine.loadavg.join(' ')}`)],
  ]);
  // `<` escaped so no value can close the data block early.
  const data = JSON.stringify(result).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wharf load: ${escapeHtml(result.service)} ${escapeHtml(result.startedAt)}</title>
<style>${STYLE}</style></head>
<body>
<h1>wharf load: ${escapeHtml(result.service)}</h1>
<div class="sub">${escapeHtml(result.startedAt)} · ${escapeHtml(result.module)}</div>
<table><caption>outcome</caption>${outcome}</table>
<table><caption>end-to-end latency (HDR histogram)</caption>${latency}</table>
<table><caption>setup</caption>${setup}</table>
${charts.join('\n')}
<script type="application/json" id="load-result">${data}</script>
</body></html>
`;
}

export function writeReport(file: string, result: LoadResult): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, renderReport(result));
}
