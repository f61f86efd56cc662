// The dashboard's entry: picks the page its path names, and feeds it the server's events
// (status every second, a chart point every interval, each new lag report) from one stream.
import { postJson, showLoggedOut } from './ui.js';
import * as overview from './page-overview.js';
import * as workers from './page-workers.js';
import * as lag from './page-lag.js';
import * as state from './page-state.js';
import * as deadLetters from './page-dead-letters.js';

const PAGES = { '/': overview, '/workers': workers, '/lag': lag, '/state': state, '/dead-letters': deadLetters };

const page = PAGES[location.pathname] ?? overview;
const main = document.getElementById('main');
const live = document.getElementById('live');

for (const link of document.querySelectorAll('#nav a')) if (link.getAttribute('href') === location.pathname) link.classList.add('active');

document.getElementById('logout').addEventListener('click', async () => {
  await postJson('/logout', {}).catch(() => undefined);
  events.close();
  showLoggedOut();
});

const events = new EventSource('/api/events');
events.addEventListener('open', () => {
  live.textContent = 'live';
  live.className = 'live on';
});
events.addEventListener('error', () => {
  live.textContent = 'reconnecting…';
  live.className = 'live off';
});
for (const name of ['status', 'point', 'lag']) {
  events.addEventListener(name, (event) => {
    const handler = page.on?.[name];
    if (handler) handler(JSON.parse(event.data));
  });
}

page.mount(main).catch((error) => {
  if (error?.status !== 401)
    main.prepend(Object.assign(document.createElement('p'), { className: 'error', textContent: String(error.message ?? error) }));
});
