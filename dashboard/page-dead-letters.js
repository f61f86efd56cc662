// Dead letters: what is parked in each <topic>.dlq, one in full (headers, value, error), and
// replaying it to the topic it came from, after a confirmation.
import { badge, confirmAction, fmt, getJson, h, postJson, replace } from './ui.js';

const els = {};

export async function mount(main) {
  els.topics = h('p', { class: 'note' }, 'Reading the dead-letter topics…');
  els.list = h('div', { class: 'scroll' });
  els.detail = h('div', { class: 'detail' }, h('p', { class: 'note' }, 'Choose a dead letter to see it whole and replay it.'));
  els.message = h('p', { class: 'message', role: 'status', id: 'dlq-message' });
  const refresh = h('button', { type: 'button', class: 'quiet', onclick: () => load() }, 'Refresh');
  replace(
    main,
    h(
      'section',
      { class: 'card' },
      h('header', { class: 'group-head' }, h('h2', {}, 'Dead letters'), refresh),
      els.topics,
      els.message,
      els.list,
    ),
    h('section', { class: 'card' }, els.detail),
  );
  await load();
}

async function load() {
  const { entries, topics } = await getJson('/api/dead-letters?limit=200');
  replace(
    els.topics,
    topics.length === 0
      ? 'No service consumes: no dead-letter topic.'
      : topics.map((t, i) => [i ? ' · ' : '', h('code', {}, t.topic), ` ${fmt.int(t.count)}`]),
  );
  replace(
    els.list,
    entries.length === 0
      ? h('p', {}, 'Nothing is parked.')
      : h(
          'table',
          { id: 'dead-letters' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Parked', 'Topic', 'Code', 'Reason', 'Attempts', 'Key', 'Replayed'].map((t) => h('th', {}, t)),
            ),
          ),
          h(
            'tbody',
            {},
            [...entries]
              .reverse()
              .map((e) =>
                h(
                  'tr',
                  { class: 'pick', 'data-id': e.id, onclick: () => show(e.id) },
                  h('td', {}, fmt.time(e.at)),
                  h('td', {}, `${e.topic}[${e.originalPartition ?? '?'}]@${e.originalOffset ?? '?'}`),
                  h('td', {}, badge(e.code, 'code')),
                  h('td', { class: 'reason' }, e.reason),
                  h('td', { class: 'num' }, e.attempts),
                  h('td', {}, e.key ?? '–'),
                  h('td', {}, e.replayedAt ? badge(`replayed ${fmt.time(e.replayedAt)}`, 'replayed') : '–'),
                ),
              ),
          ),
        ),
  );
}

async function show(id) {
  const d = await getJson(`/api/dead-letters/show?id=${encodeURIComponent(id)}`);
  const replay = h(
    'button',
    { type: 'button', class: 'primary', id: 'replay', disabled: d.valueDropped },
    d.replayedAt ? 'Replay again' : 'Replay',
  );
  replay.addEventListener('click', async () => {
    if (!(await confirmAction(`Send ${d.id} back to ${d.topic}? Its consumers will handle it again.`, 'Replay'))) return;
    replay.disabled = true;
    try {
      const result = await postJson('/api/dead-letters/replay', { ids: [d.id] });
      els.message.textContent =
        result.replayed.length > 0 ? `Replayed ${d.id} to ${d.topic}.` : `Not replayed: ${result.skipped.map((s) => s.reason).join('; ')}`;
      await load();
      await show(id);
    } catch (error) {
      els.message.textContent = `Replay failed: ${error.message}`;
      replay.disabled = false;
    }
  });
  replace(
    els.detail,
    h('header', { class: 'group-head' }, h('h2', {}, d.id), badge(d.code, 'code'), replay),
    h(
      'dl',
      { class: 'facts' },
      [
        ['From', `${d.topic} partition ${d.originalPartition ?? '?'} offset ${d.originalOffset ?? '?'}`],
        ['Parked', `${d.at} after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`],
        ['Error', `${d.errorName} ${d.code}: ${d.reason}`],
        ['Key', d.key ?? '–'],
        ['Replayed', d.replayedAt ?? 'not yet'],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    h('h3', {}, `Value (${d.valueEncoding}, ${fmt.int(d.bytes)} bytes)`),
    h('pre', { class: 'value' }, d.valueDropped ? '(too large for the dead-letter topic: not kept)' : (d.value ?? 'null')),
    h('h3', {}, 'Headers'),
    h('pre', { class: 'value' }, JSON.stringify(d.headers, null, 2)),
    d.stack ? [h('h3', {}, 'Stack'), h('pre', { class: 'value stack' }, d.stack)] : null,
  );
}
