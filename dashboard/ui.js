// Small DOM and fetch helpers shared by the pages. Text goes in as text nodes only: shared state
// and dead letters hold whatever producers wrote, and none of it may become markup.

export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.setAttribute('class', value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(parent, ...children) {
  parent.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? `HTTP_${status}`;
  }
}

async function answer(response) {
  if (response.status === 401) {
    showLoggedOut();
    throw new ApiError(401, { error: { code: 'UNAUTHORIZED', message: 'the session ended: log in again' } });
  }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function getJson(path) {
  return answer(await fetch(path, { headers: { Accept: 'application/json' } }));
}

export async function postJson(path, body) {
  return answer(
    await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}

export function showLoggedOut() {
  const main = document.getElementById('main');
  replace(
    main,
    h(
      'section',
      { class: 'card notice' },
      h('h2', {}, 'Logged out'),
      h('p', {}, 'Open a new login URL: ', h('code', {}, 'npm run admin -- dashboard'), ' prints one.'),
    ),
  );
}

/** Asks before doing something; resolves true when confirmed. */
export function confirmAction(text, okLabel = 'Confirm') {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    const done = (value) => {
      ok.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      dialog.close();
      resolve(value);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    dialog.showModal();
  });
}

export function badge(text, kind = text) {
  return h('span', { class: `badge b-${String(kind).toLowerCase()}` }, text);
}

export const fmt = {
  int: (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US')),
  rate: (n) => (n === null || n === undefined ? '–' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)),
  ms: (n) => (n === null || n === undefined ? '–' : n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`),
  bytes: (n) => (n === null || n === undefined ? '–' : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.round(n / 1024)} kB`),
  ago(iso, now = Date.now()) {
    if (!iso) return '–';
    const s = Math.max(0, (now - Date.parse(iso)) / 1000);
    return s < 60 ? `${s.toFixed(1)} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : `${Math.floor(s / 3600)} h ago`;
  },
  time: (iso) => (iso ? new Date(iso).toLocaleTimeString('en-GB') : '–'),
};

/** A stable colour per name, from a palette that reads on the dark background. */
const PALETTE = ['#2dd4bf', '#f59e0b', '#818cf8', '#f472b6', '#4ade80', '#38bdf8', '#fb7185', '#facc15'];
const colours = new Map();
export function colourOf(name) {
  if (!colours.has(name)) colours.set(name, PALETTE[colours.size % PALETTE.length]);
  return colours.get(name);
}
