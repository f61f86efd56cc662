// Workers: every worker slot's state, restarts, handled and failed messages, heap, last heartbeat
// and last error, updated every second; a slot that restarted since the page opened is marked.
import { sparkline } from './charts.js';
import { badge, fmt, getJson, h, replace } from './ui.js';

const els = {};
const seenRestarts = new Map();
const heaps = new Map();

export async function mount(main) {
  els.table = h('div', { class: 'scroll' });
  replace(
    main,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Workers ', h('small', {}, 'one row per worker slot; ids stay across restarts')),
      els.table,
    ),
  );
  render(await getJson('/api/status'));
}

function render(status) {
  const now = Date.now();
  replace(
    els.table,
    h(
      'table',
      { id: 'workers' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Worker', 'Role', 'State', 'Restarts', 'Handled', 'Errors', 'Heap', '', 'Heartbeat', 'Thread', 'Last error'].map((t) =>
            h('th', {}, t),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        status.workers.map((w) => {
          const before = seenRestarts.get(w.workerId);
          seenRestarts.set(w.workerId, w.restarts);
          const history = heaps.get(w.workerId) ?? [];
          if (w.heapUsedBytes !== null) history.push(w.heapUsedBytes);
          if (history.length > 60) history.shift();
          heaps.set(w.workerId, history);
          const late = w.lastHeartbeatAt && now - Date.parse(w.lastHeartbeatAt) > 5_000 && w.state === 'ready';
          return h(
            'tr',
            { 'data-worker': w.workerId, class: before !== undefined && w.restarts > before ? 'flash' : '' },
            h('td', {}, h('b', {}, w.workerId)),
            h('td', {}, w.role),
            h('td', {}, badge(w.state)),
            h('td', { class: `num restarts ${w.restarts > 0 ? 'hot' : ''}` }, w.restarts),
            h('td', { class: 'num' }, fmt.int(w.handled)),
            h('td', { class: 'num' }, fmt.int(w.errors)),
            h('td', { class: 'num' }, fmt.bytes(w.heapUsedBytes)),
            h('td', {}, sparkline(history, '#818cf8', 80, 22)),
            h('td', { class: late ? 'late' : '' }, fmt.ago(w.lastHeartbeatAt, now)),
            h('td', { class: 'num' }, w.threadId ?? '–'),
            h('td', { class: 'last-error' }, w.lastError ?? ''),
          );
        }),
      ),
    ),
  );
}

export const on = { status: render };
