import { describe, expect, it } from 'vitest';
import { formatSummary } from '../../scripts/load/cli/load.js';
import { renderReport } from '../../scripts/load/report-html.js';
import type { LoadResult } from '../../scripts/load/run.js';
import { lineChart, niceTicks } from '../../scripts/load/svg-chart.js';

function result(overrides: Partial<LoadResult> = {}): LoadResult {
  return {
    service: 'jarvis</script><b>',
    module: '/x/jarvis.js',
    workers: 2,
    partitions: 6,
    size: 256,
    keys: 100,
    rate: 1_000,
    maxInFlight: null,
    messages: 3_000,
    durationLimitS: null,
    brokers: ['127.0.0.1:9092'],
    topics: { requests: 'r', replies: 'p', deadLetters: 'r.dlq', kept: false },
    startedAt: '2026-01-01T00:00:00.000Z',
    elapsedS: 3.2,
    sendS: 3,
    warmupS: 0,
    sent: 3_000,
    acked: 3_000,
    answered: 3_000,
    lost: 0,
    duplicates: 0,
    deadLettered: 0,
    sendErrors: 0,
    unknownReplies: 0,
    errors: 0,
    crashes: [],
    throughput: { sentPerSec: 1_000, answeredPerSec: 937.5 },
    latencyMs: { count: 3_000, min: 0.5, mean: 3, p50: 2, p90: 5, p99: 9, p999: 12, max: 20 },
    lostSample: [],
    aborted: false,
    machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' },
    timeline: [
      { t: 1, sent: 1_000, answered: 990, inFlight: 10, lag: 12, p50: 2, p99: 8, max: 11 },
      { t: 2, sent: 1_000, answered: 0, inFlight: 1_010, lag: null, p50: null, p99: null, max: null },
      { t: 3, sent: 1_000, answered: 1_500, inFlight: 510, lag: 400, p50: 3, p99: 9, max: 20 },
      { t: 3.2, sent: 0, answered: 510, inFlight: 0, lag: 0, p50: 2, p99: 5, max: 6 },
    ],
    ...overrides,
  };
}

const polylines = (html: string, series: string) =>
  [...html.matchAll(new RegExp(`<polyline points="([^"]*)"[^>]*data-series="${series}"`, 'g'))].map((m) => m[1]!.split(' '));

describe('the HTML report', () => {
  it('draws throughput, latency and lag as inline SVG from the run, with no external resource', () => {
    const html = renderReport(result());
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
    expect(html.match(/<svg /g)).toHaveLength(3);
    // One point per interval for throughput; the latency line breaks where an interval had no reply.
    expect(polylines(html, 'answered')).toEqual([expect.any(Array)]);
    expect(polylines(html, 'answered')[0]).toHaveLength(4);
    expect(polylines(html, 'p99').map((run) => run.length)).toEqual([2]);
    expect(html).toContain('data-series="p99"');
    expect(html).toMatch(/<circle [^>]*data-series="p99"/);
  });

  it('plots the last, shorter interval as a rate, not as a count', () => {
    const html = renderReport(result());
    const [points] = polylines(html, 'answered');
    const ys = points!.map((p) => Number(p.split(',')[1]));
    // 510 answers in 0.2 s is 2,550/s: the highest point of the chart, so the smallest y.
    expect(Math.min(...ys)).toBe(ys[3]);
  });

  it('embeds the run as JSON that cannot break out of its script block', () => {
    const r = result();
    const html = renderReport(r);
    expect(html).not.toContain('jarvis</script><b>');
    const data = /<script type="application\/json" id="load-result">(.*)<\/script>/s.exec(html)![1]!;
    expect(JSON.parse(data)).toEqual(r);
  });

  it('shows lost requests in red', () => {
    expect(renderReport(result({ lost: 3 }))).toMatch(/<span class="bad">3<\/span>/);
  });
});

describe('charts and summaries', () => {
  it('picks round axis ticks that cover the data', () => {
    expect(niceTicks(9_730)).toEqual([0, 2_000, 4_000, 6_000, 8_000, 10_000]);
    expect(niceTicks(0.7)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
  });

  it('draws a log axis for latencies spanning decades', () => {
    const svg = lineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      log: true,
      series: [
        {
          name: 's',
          color: '#000',
          points: [
            [1, 0.5],
            [2, 500],
          ],
        },
      ],
    });
    for (const tick of ['>0.1<', '>1<', '>10<', '>100<', '>1000<']) expect(svg).toContain(tick);
  });

  it('prints the figures a person reads first', () => {
    const text = formatSummary(result());
    expect(text).toContain('lost 0');
    expect(text).toMatch(/p50 2\.00 {2}p90 5\.00 {2}p99 9\.00 {2}p99\.9 12\.00 {2}max 20\.00/);
  });
});
