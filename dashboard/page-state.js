// Shared state: every object with its kind and size; one object's value, and its changes live.
import { fmt, getJson, h, replace } from './ui.js';

const els = {};
let watching;

export async function mount(main) {
  els.list = h('div', { class: 'scroll' });
  els.filter = h('input', { type: 'search', placeholder: 'filter by name', 'aria-label': 'filter' });
  els.detail = h('div', { class: 'detail' }, h('p', { class: 'note' }, 'Choose an object to see its value and watch it change.'));
  replace(
    main,
    h(
      'section',
      { class: 'split' },
      h('div', { class: 'card' }, h('h2', {}, 'Shared objects'), els.filter, els.list),
      h('div', { class: 'card' }, els.detail),
    ),
  );
  els.filter.addEventListener('input', () => renderList());
  await refreshList();
  const chosen = new URLSearchParams(location.search).get('name');
  if (chosen) await show(chosen);
}

let objects = [];
async function refreshList() {
  objects = await getJson('/api/state');
  renderList();
}

function renderList() {
  const filter = els.filter.value.trim().toLowerCase();
  replace(
    els.list,
    h(
      'table',
      { id: 'objects' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Name', 'Kind', 'Size'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        objects
          .filter((o) => o.name.toLowerCase().includes(filter))
          .map((o) =>
            h(
              'tr',
              { class: 'pick', 'data-name': o.name, onclick: () => show(o.name) },
              h('td', {}, o.name),
              h('td', {}, o.kind),
              h('td', { class: 'num' }, o.size),
            ),
          ),
      ),
    ),
  );
}

async function show(name) {
  watching?.close();
  watching = undefined;
  history.replaceState(null, '', `/state?name=${encodeURIComponent(name)}`);
  const value = h('pre', { class: 'value', id: 'object-value' });
  const log = h('ol', { class: 'changes', id: 'changes' });
  const toggle = h('button', { type: 'button', class: 'primary', id: 'watch' }, 'Watch live');
  replace(els.detail, h('header', { class: 'group-head' }, h('h2', {}, name), toggle), value, h('h3', {}, 'Changes'), log);
  const load = async () => {
    try {
      const entry = await getJson(`/api/state/object?name=${encodeURIComponent(name)}`);
      value.textContent = `${entry.kind}\n${JSON.stringify(entry.value, null, 2)}`;
    } catch (error) {
      value.textContent = error.status === 404 ? '(no such object now)' : error.message;
    }
  };
  let pending;
  // Listening before the value is loaded: the button is on the page already, and a click on it
  // while the value was still on its way did nothing.
  toggle.addEventListener('click', () => {
    if (watching) {
      watching.close();
      watching = undefined;
      toggle.textContent = 'Watch live';
      return;
    }
    watching = new EventSource(`/api/state/watch?name=${encodeURIComponent(name)}`);
    toggle.textContent = 'Stop watching';
    watching.addEventListener('change', (event) => {
      const change = JSON.parse(event.data);
      const what = change.truncated
        ? '(too large to show)'
        : JSON.stringify(change.key !== undefined ? { [String(change.key)]: change.value } : change.value);
      log.prepend(
        h('li', {}, h('time', {}, fmt.time(new Date(change.at).toISOString())), h('b', {}, change.op), h('code', {}, what ?? '')),
      );
      while (log.children.length > 200) log.lastChild.remove();
      clearTimeout(pending);
      pending = setTimeout(load, 150);
    });
  });
  await load();
}
