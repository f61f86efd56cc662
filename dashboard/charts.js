// Hand-written SVG charts: time series over the last minutes, and sparklines. No library, no
// inline style (the page's Content-Security-Policy allows none): colours are SVG attributes.
import { h } from './ui.js';

const W = 640;
const H = 200;
const PAD = { left: 64, right: 12, top: 12, bottom: 24 };

/** A round top for the axis, and how many gridlines divide it into round steps. */
function niceMax(value) {
  if (!(value > 0)) return { max: 1, divisions: 4 };
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const [step, divisions] of [
    [1, 5],
    [2, 4],
    [2.5, 5],
    [5, 5],
    [10, 5],
  ])
    if (value <= step * exp) return { max: step * exp, divisions };
  return { max: 10 * exp, divisions: 5 };
}

/**
 * A chart of `series` ([{name, colour, points: [[ms, value|null]]}]) over the `windowMs` before
 * `now`; a null value breaks the line. `format` writes a value for the axis and the legend.
 */
export function timeChart({ series, windowMs, now = Date.now(), format = String, empty = 'no data yet' }) {
  const x = (t) => PAD.left + ((t - (now - windowMs)) / windowMs) * (W - PAD.left - PAD.right);
  const values = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null && v !== undefined));
  const { max, divisions } = niceMax(Math.max(0, ...values) * 1.1);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
  const defs = h('svg:defs');
  svg.append(defs);
  for (let i = 0; i <= divisions; i++) {
    const v = (max * i) / divisions;
    svg.append(h('svg:line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: i === 0 ? 'axis' : 'grid' }));
    svg.append(h('svg:text', { x: PAD.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, format(v)));
  }
  const minutes = windowMs / 60_000;
  for (const m of [minutes, minutes / 2, 0]) {
    const t = now - m * 60_000;
    svg.append(
      h(
        'svg:text',
        { x: x(t), y: H - 6, class: 'tick', 'text-anchor': m === 0 ? 'end' : m === minutes ? 'start' : 'middle' },
        m === 0 ? 'now' : `−${m} min`,
      ),
    );
  }
  if (values.length === 0) svg.append(h('svg:text', { x: W / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' }, empty));
  series.forEach((s, i) => {
    const visible = s.points.filter(([t]) => t >= now - windowMs);
    const runs = [];
    let run = [];
    for (const [t, v] of visible) {
      if (v === null || v === undefined) {
        if (run.length) runs.push(run);
        run = [];
      } else run.push([x(t), y(v)]);
    }
    if (run.length) runs.push(run);
    const gradient = `fill-${i}`;
    defs.append(
      h(
        'svg:linearGradient',
        { id: gradient, x1: 0, x2: 0, y1: 0, y2: 1 },
        h('svg:stop', { offset: '0%', 'stop-color': s.colour, 'stop-opacity': 0.35 }),
        h('svg:stop', { offset: '100%', 'stop-color': s.colour, 'stop-opacity': 0 }),
      ),
    );
    for (const points of runs) {
      const line = points.map(([px, py], j) => `${j ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
      const base = y(0).toFixed(1);
      svg.append(
        h('svg:path', {
          d: `${line}L${points.at(-1)[0].toFixed(1)},${base}L${points[0][0].toFixed(1)},${base}Z`,
          fill: `url(#${gradient})`,
        }),
      );
      svg.append(h('svg:path', { d: line, fill: 'none', stroke: s.colour, 'stroke-width': 2, 'stroke-linejoin': 'round', class: 'line' }));
    }
  });
  const legend = h(
    'div',
    { class: 'legend' },
    series.map((s) => {
      const last = [...s.points].reverse().find((p) => p[1] !== null && p[1] !== undefined);
      return h(
        'span',
        {},
        h('svg:svg', { viewBox: '0 0 10 10', class: 'dot' }, h('svg:circle', { cx: 5, cy: 5, r: 5, fill: s.colour })),
        s.name,
        h('b', {}, last ? format(last[1]) : '–'),
      );
    }),
  );
  return h('div', { class: 'chart-box' }, svg, legend);
}

/** A small line of `values` (oldest first), for a table cell. */
export function sparkline(values, colour = '#2dd4bf', width = 120, height = 28) {
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, class: 'spark', width, height });
  if (values.length < 2) return svg;
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const d = values.map((v, i) => `${i ? 'L' : 'M'}${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`).join('');
  svg.append(h('svg:path', { d, fill: 'none', stroke: colour, 'stroke-width': 1.5 }));
  return svg;
}
