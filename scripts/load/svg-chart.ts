/**
 * Line charts as inline SVG, drawn when the report is written: the page needs no script, no
 * library and no network to show them, and what it shows is what the run measured.
 */
export interface Series {
  name: string;
  color: string;
  /** Drawn dashed, so a line it overlaps (p99 under max) stays visible. */
  dashed?: boolean;
  /** [x, y]; a null y is a gap (no reply in that interval). */
  points: [number, number | null][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Logarithmic y axis (latencies span orders of magnitude). */
  log?: boolean;
  width?: number;
  height?: number;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** 1, 2 or 5 times a power of ten, about `count` steps over [0, max]. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  // Multiples computed afresh and trimmed to 12 digits, so 3 × 0.2 is labelled 0.6, not 0.6000000000000001.
  const steps = Math.ceil(max / step - 1e-9);
  return Array.from({ length: steps + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); 10 ** e <= max * 10; e++) ticks.push(10 ** e);
  return ticks;
}

const label = (v: number) => (v >= 1_000_000 ? `${v / 1_000_000}M` : v >= 10_000 ? `${v / 1_000}k` : v >= 1 ? String(v) : v.toPrecision(1));

export function lineChart({ title, xLabel, yLabel, series, log = false, width = 900, height = 300 }: ChartOptions): string {
  const pad = { left: 64, right: 16, top: 36, bottom: 44 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y)).filter((y): y is number => y !== null && (!log || y > 0));
  const xMax = Math.max(1, ...xs);
  const xTicks = niceTicks(xMax, 8);
  const xEnd = xTicks.at(-1)!;
  const yTicks = log ? logTicks(Math.max(1e-3, Math.min(...ys, 1)), Math.max(...ys, 1)) : niceTicks(Math.max(1, ...ys));
  const [yLow, yHigh] = [yTicks[0]!, yTicks.at(-1)!];
  const px = (x: number) => pad.left + (x / xEnd) * plotW;
  const py = (y: number) => {
    const f = log ? (Math.log10(y) - Math.log10(yLow)) / (Math.log10(yHigh) - Math.log10(yLow)) : (y - yLow) / (yHigh - yLow || 1);
    return pad.top + plotH - f * plotH;
  };
  const parts: string[] = [
    `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">`,
    `<text x="${pad.left}" y="20" class="title">${escapeHtml(title)}</text>`,
    `<rect x="${pad.left}" y="${pad.top}" width="${plotW}" height="${plotH}" class="plot"/>`,
  ];
  for (const y of yTicks) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${(py(y) + 4).toFixed(1)}" class="tick" text-anchor="end">${label(y)}</text>`);
  }
  for (const x of xTicks)
    parts.push(`<text x="${px(x).toFixed(1)}" y="${pad.top + plotH + 16}" class="tick" text-anchor="middle">${label(x)}</text>`);
  parts.push(`<text x="${pad.left + plotW / 2}" y="${height - 6}" class="axis" text-anchor="middle">${escapeHtml(xLabel)}</text>`);
  parts.push(
    `<text transform="translate(14 ${pad.top + plotH / 2}) rotate(-90)" class="axis" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    // A gap (null) splits the line, so an interval without replies is not drawn as a slope.
    const runs: string[][] = [[]];
    for (const [x, y] of s.points) {
      if (y === null || (log && y <= 0)) runs.push([]);
      else runs.at(-1)!.push(`${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    }
    for (const run of runs.filter((r) => r.length > 0)) {
      parts.push(
        run.length === 1
          ? `<circle cx="${run[0]!.split(',')[0]}" cy="${run[0]!.split(',')[1]}" r="2" fill="${s.color}" data-series="${escapeHtml(s.name)}"/>`
          : `<polyline points="${run.join(' ')}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 4"' : ''} data-series="${escapeHtml(s.name)}"/>`,
      );
    }
    const lx = pad.left + plotW - 150 * (series.length - i);
    parts.push(
      `<rect x="${lx}" y="10" width="12" height="4" fill="${s.color}"/><text x="${lx + 16}" y="16" class="legend">${escapeHtml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
