// Overview: the services and their health, throughput and handler latency over the last minutes,
// every worker at a glance, and scaling a service.
import { timeChart } from './charts.js';
import { badge, colourOf, confirmAction, fmt, getJson, h, postJson, replace } from './ui.js';

let history = { intervalMs: 2000, points: [] };
let status;
const els = {};

export async function mount(main) {
  els.tiles = h('section', { class: 'tiles' });
  els.throughput = h('div', { class: 'chart-slot' });
  els.latency = h('div', { class: 'chart-slot' });
  els.services = h('div');
  els.workers = h('div', { class: 'chips', id: 'worker-chips' });
  els.message = h('p', { class: 'message', role: 'status' });
  replace(
    main,
    els.tiles,
    h(
      'section',
      { class: 'grid2' },
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Throughput ', h('small', {}, 'messages per second: consumed (producers: sent)')),
        els.throughput,
      ),
      h('div', { class: 'card' }, h('h2', {}, 'Handler latency ', h('small', {}, 'p95 per service')), els.latency),
    ),
    h('section', { class: 'card' }, h('h2', {}, 'Services'), els.services, els.message),
    h('section', { class: 'card' }, h('h2', {}, 'Workers'), els.workers),
  );
  const [s, hist] = await Promise.all([getJson('/api/status'), getJson('/api/history')]);
  history = hist;
  render(s);
  drawCharts();
}

// The last 10 minutes, or the last 2 while the supervisor is younger than that.
const WINDOW_MS = 10 * 60_000;
const MIN_WINDOW_MS = 2 * 60_000;

function drawCharts() {
  const names = status ? status.services.map((s) => s.name) : [];
  // A service that only produces shows what it sends.
  const producing = new Set(status ? status.services.filter((s) => s.workers.consumer === 0).map((s) => s.name) : []);
  const series = (key) =>
    names.map((name) => ({
      name,
      colour: colourOf(name),
      points: history.points.map((p) => [p.at, p.services[name]?.[key === 'consumed' && producing.has(name) ? 'sent' : key] ?? null]),
    }));
  const now = Date.now();
  const first = history.points[0]?.at ?? now;
  const windowMs = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, Math.ceil((now - first) / 60_000) * 60_000));
  replace(els.throughput, timeChart({ series: series('consumed'), windowMs, now, format: (v) => fmt.rate(v) }));
  replace(els.latency, timeChart({ series: series('p95'), windowMs, now, format: (v) => fmt.ms(v), empty: 'no handler ran yet' }));
}

function tile(label, value, note, kind) {
  return h(
    'div',
    { class: `tile ${kind ?? ''}` },
    h('span', { class: 'label' }, label),
    h('b', {}, value),
    note ? h('small', {}, note) : null,
  );
}

function render(next) {
  status = next;
  const workers = status.workers;
  const ready = workers.filter((w) => w.state === 'ready').length;
  const restarts = workers.reduce((sum, w) => sum + w.restarts, 0);
  const healthy = status.services.filter((s) => s.health === 'healthy').length;
  const last = history.points.at(-1);
  const rate = last ? Object.values(last.services).reduce((sum, s) => sum + s.consumed, 0) : null;
  const p95 = last ? Math.max(-1, ...Object.values(last.services).map((s) => s.p95 ?? -1)) : -1;
  replace(
    els.tiles,
    tile('Services healthy', `${healthy} / ${status.services.length}`, null, healthy === status.services.length ? 'good' : 'warn'),
    tile('Workers ready', `${ready} / ${workers.length}`, null, ready === workers.length ? 'good' : 'warn'),
    tile('Restarts', fmt.int(restarts), 'since start', restarts > 0 ? 'warn' : ''),
    tile('Consumed', fmt.rate(rate), 'msg/s now'),
    tile('Latency p95', p95 < 0 ? '–' : fmt.ms(p95), 'slowest service'),
    tile('Uptime', uptime(status.uptimeMs), `pid ${status.pid}`),
  );
  replace(
    els.services,
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Service', 'Health', 'Consumers', 'Producers', 'Handled', 'Restarts', 'Scale'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        status.services.map((s) =>
          h(
            'tr',
            { 'data-service': s.name },
            h('td', {}, h('span', { class: 'swatch', 'data-colour': colourOf(s.name) }), s.name),
            h('td', {}, badge(s.health), s.reason ? h('small', { class: 'reason' }, ` ${s.reason}`) : null),
            h('td', { class: 'num' }, s.workers.consumer),
            h('td', { class: 'num' }, s.workers.producer),
            h('td', { class: 'num' }, fmt.int(s.handled)),
            h('td', { class: 'num' }, fmt.int(s.restarts)),
            h('td', {}, scaleControl(s)),
          ),
        ),
      ),
    ),
  );
  for (const swatch of els.services.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.colour;
  replace(
    els.workers,
    workers.map((w) =>
      h(
        'a',
        { class: `chip s-${w.state}`, href: '/workers', 'data-worker': w.workerId, title: w.lastError ?? w.state },
        h('b', {}, w.workerId),
        h('span', {}, w.state),
        h('span', { class: w.restarts > 0 ? 'restarts hot' : 'restarts' }, `${w.restarts} restart${w.restarts === 1 ? '' : 's'}`),
      ),
    ),
  );
}

function uptime(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function scaleControl(service) {
  if (service.workers.consumer === 0 && service.workers.producer > 0) return h('small', {}, 'producer only');
  const input = h('input', {
    type: 'number',
    min: 1,
    max: 64,
    value: service.workers.consumer,
    'aria-label': `consumers of ${service.name}`,
  });
  const button = h('button', { type: 'button', class: 'small' }, 'Scale');
  button.addEventListener('click', async () => {
    const consumers = Number(input.value);
    if (!(await confirmAction(`Run ${consumers} consumer worker${consumers === 1 ? '' : 's'} for ${service.name}?`, 'Scale'))) return;
    button.disabled = true;
    els.message.textContent = `Scaling ${service.name} to ${consumers}…`;
    try {
      await postJson('/api/scale', { service: service.name, consumers });
      els.message.textContent = `${service.name}: ${consumers} consumer worker${consumers === 1 ? '' : 's'} ready.`;
    } catch (error) {
      els.message.textContent = `Scale failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'scale' }, input, button);
}

export const on = {
  status(next) {
    // Keep a value someone is typing into a scale box.
    if (document.activeElement?.matches?.('.scale input')) return;
    render(next);
  },
  point(point) {
    history.points.push(point);
    if (history.points.length > 300) history.points.shift();
    drawCharts();
  },
};
