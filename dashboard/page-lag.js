// Consumer lag: per group its worst status, lag and members; per partition the committed offset,
// the log end, lag and status (Burrow's rules, judged by the supervisor), and the group's lag
// over the reports seen since the page opened.
import { sparkline } from './charts.js';
import { badge, fmt, getJson, h, replace } from './ui.js';

const els = {};
const trend = new Map();

export async function mount(main) {
  els.groups = h('div', { id: 'lag-groups' });
  els.note = h('p', { class: 'note' });
  replace(main, h('section', {}, els.groups, els.note));
  render(await getJson('/api/lag'));
}

function render(report) {
  for (const g of report.groups) {
    const values = trend.get(g.group) ?? [];
    if (values.at(-1)?.at !== report.at) values.push({ at: report.at, lag: g.lag });
    if (values.length > 120) values.shift();
    trend.set(g.group, values);
  }
  replace(
    els.groups,
    report.groups.length === 0
      ? h('section', { class: 'card' }, h('p', {}, 'No service consumes: no consumer group to watch.'))
      : report.groups.map((g) =>
          h(
            'section',
            { class: 'card', 'data-group': g.group },
            h(
              'header',
              { class: 'group-head' },
              h('h2', {}, g.group),
              badge(g.status),
              h('span', {}, `lag ${fmt.int(g.lag)}`),
              h('span', {}, `${g.members} member${g.members === 1 ? '' : 's'} (${g.state})`),
              sparkline(
                trend.get(g.group).map((v) => v.lag),
                '#f59e0b',
              ),
            ),
            h(
              'table',
              {},
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Topic', 'Partition', 'Committed', 'End', 'Lag', 'Status'].map((t) => h('th', {}, t)),
                ),
              ),
              h(
                'tbody',
                {},
                g.partitions.map((p) =>
                  h(
                    'tr',
                    {},
                    h('td', {}, p.topic),
                    h('td', { class: 'num' }, p.partition),
                    h('td', { class: 'num' }, p.committed === null ? '–' : fmt.int(p.committed)),
                    h('td', { class: 'num' }, fmt.int(p.end)),
                    h('td', { class: 'num' }, fmt.int(p.lag)),
                    h('td', {}, badge(p.status)),
                  ),
                ),
              ),
            ),
          ),
        ),
  );
  const w = report.window;
  els.note.textContent = `Statuses over the last ${w.samples} samples, one every ${w.intervalMs / 1000} s; read from Kafka at ${fmt.time(report.at)}. OK: keeping up · WARN: falling behind · STALL: members but no progress · STOP: nobody commits · REWIND: the offset went back.`;
}

export const on = { lag: render };
