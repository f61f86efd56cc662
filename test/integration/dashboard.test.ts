import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type ConsoleMessage } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createLoginToken, loginUrl } from '../../src/dashboard/login.js';
import { DASHBOARD_PAGES } from '../../src/dashboard/dashboard.js';
import {
  crashOneWorker,
  createTopic,
  kafkaForTest,
  runAdminIn,
  SERVICE_MODULES,
  startWharfForTest,
  uniqueName,
  waitFor,
} from '../helpers.js';

/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * supervisor on the run's broker: nothing without a login, the overview lists every worker, a
 * crash shows up as a restart without a reload, scaling adds a worker, a parked message shows in dead letters and
 * replays, and the page logs no console errors. With WHARF_SCREENSHOT=1 it writes the overview to
 * docs/dashboard.png (the README's picture).
 */
const CHROMIUM = process.env.WHARF_CHROMIUM ?? '/usr/bin/chromium';

// What the functions run in the page use of its globals (this file is typed for Node, without the DOM's types).
interface PageNode {
  textContent: string | null;
  children: { length: number };
}
declare const document: { querySelector(selector: string): PageNode | null; querySelectorAll(selector: string): { length: number } };
declare const window: Record<string, unknown>;

const API_GETS = [
  '/api/status',
  '/api/history',
  '/api/lag',
  '/api/state',
  '/api/state/object?name=fault',
  '/api/dead-letters',
  '/api/dead-letters/show?id=x.dlq/0/0',
  '/api/events',
  '/api/state/watch?name=fault',
  '/assets/app.js',
  '/assets/app.css',
];
const API_POSTS = ['/api/scale', '/api/dead-letters/replay', '/logout'];

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not at ${CHROMIUM}: the dashboard's browser test needs it. Install it (\`apt-get install -y chromium\`; .ci/run does) or point WHARF_CHROMIUM at one.`,
    );
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  onTestFinished(() => browser.close());
  return browser;
}

describe('the dashboard', () => {
  it('needs a login, shows every worker, a crash live, scales, and replays a dead letter', { timeout: 240_000 }, async () => {
    const browser = await launch();
    const k = kafkaForTest();
    const input = await createTopic(await k.admin(), uniqueName('dash-in'), 2);
    const wharf = await startWharfForTest(
      {
        services: [
          {
            module: SERVICE_MODULES.fixture('parker'),
            workers: { consumer: 2 },
            consumes: { topics: [input], groupId: uniqueName('dash'), retry: { attempts: 1 } },
          },
          // A producer for the overview's charts (and the screenshot): 40 messages a second into parker.
          { module: SERVICE_MODULES.fixture('ticker'), rate: 40, options: { topic: input } },
        ],
        kafka: { clientId: uniqueName('wharf') },
      },
      { admin: true },
    );
    const base = wharf.http!.url;
    const home = dirname(wharf.admin!.connectionFile);

    // Without a session: 401 and nothing else, for every page, asset and API, GET or POST.
    for (const path of [...DASHBOARD_PAGES, ...API_GETS]) {
      const response = await fetch(`${base}${path}`);
      expect(response.status, path).toBe(401);
      const body = await response.text();
      expect(body, path).toMatch(/^Unauthorized: /);
      expect(body, path).not.toContain('parker');
    }
    for (const path of API_POSTS) {
      const response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Origin: base },
        body: JSON.stringify({ service: 'parker', consumers: 1 }),
      });
      expect(response.status, path).toBe(401);
    }
    // Wrong tokens: garbage, one made with another key, one expired.
    const forged = createLoginToken('not the deployment key at all');
    const expired = createLoginToken(wharf.admin!.authkey, { now: Date.now() - 2 * 3_600_000 });
    for (const token of ['', 'x', forged, expired]) expect((await fetch(`${base}/login?token=${token}`)).status).toBe(401);
    expect((await fetch(`${base}/api/status`, { headers: { Cookie: `wharf_session_x=${'a'.repeat(43)}` } })).status).toBe(401);
    // /metrics stays open.
    expect((await fetch(`${base}/metrics`)).status).toBe(200);

    // A login token from the key, used once: a session cookie, HttpOnly and SameSite=Strict.
    const once = loginUrl(base, createLoginToken(wharf.admin!.authkey));
    const login = await fetch(once);
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect((await fetch(once)).status).toBe(401);
    const session = cookie.split(';')[0]!;
    expect((await fetch(`${base}/api/status`, { headers: { Cookie: session } })).status).toBe(200);
    // Pages allow no inline script or style, and have none.
    const document_ = await fetch(`${base}/workers`, { headers: { Cookie: session } });
    const csp = document_.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await document_.text();
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/);
    // A state-changing request with the session but not from this origin: 401, and nothing scaled.
    for (const origin of [undefined, 'http://evil.example', `http://127.0.0.1:1`]) {
      const response = await fetch(`${base}/api/scale`, {
        method: 'POST',
        headers: { Cookie: session, 'Content-Type': 'application/json', ...(origin ? { Origin: origin } : {}) },
        body: JSON.stringify({ service: 'parker', consumers: 1 }),
      });
      expect(response.status, origin).toBe(401);
    }
    expect(wharf.supervisor.status().services.find((s) => s.name === 'parker')!.workers.consumer).toBe(2);
    // Bad input with a session: 4xx, and the supervisor serves on.
    const post = (body: string, type = 'application/json') =>
      fetch(`${base}/api/scale`, { method: 'POST', headers: { Cookie: session, 'Content-Type': type, Origin: base }, body });
    expect((await post('{"service":')).status).toBe(400);
    expect((await post('[]')).status).toBe(400);
    expect((await post('service=parker', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await post(JSON.stringify({ service: 'parker', consumers: 'many' }))).status).toBe(400);
    expect((await post('x'.repeat(70_000))).status).toBe(413);
    expect((await fetch(`${base}/api/state/object?name=`, { headers: { Cookie: session } })).status).toBe(400);
    expect((await fetch(`${base}/api/state/object?name=nothing-here`, { headers: { Cookie: session } })).status).toBe(404);

    // The browser logs in with the URL `npm run admin -- dashboard` prints.
    const printed = await runAdminIn(home, ['dashboard', '--json']);
    expect(printed.code, printed.stderr).toBe(0);
    const { url } = JSON.parse(printed.stdout) as { url: string };
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error' || message.type() === 'warning')
        problems.push(`${message.type()}: ${message.text()} (${message.location().url || 'no url'})`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(url);
    await page.waitForURL(`${base}/`);
    const workers = wharf.supervisor.status().workers.map((w) => w.workerId);
    expect(workers).toHaveLength(3);
    await page.waitForFunction((n) => document.querySelectorAll('#worker-chips [data-worker]').length === n, workers.length);
    const shown = await page.$$eval('#worker-chips [data-worker]', (chips) => chips.map((c) => c.getAttribute('data-worker')));
    expect(shown.sort()).toEqual([...workers].sort());
    await page.waitForSelector('#live.on');

    // The ticker's traffic: the throughput chart draws a line.
    const producer = await k.producer();
    await page.waitForSelector('.chart path.line', { timeout: 30_000 });

    // A worker crash: the page shows its restart, without a reload.
    await page.evaluate(() => void (window.stillTheSamePage = true));
    const workerId = await crashOneWorker(wharf, producer, input);
    await page.waitForFunction(
      (id) => document.querySelector(`#worker-chips [data-worker="${id}"] .restarts`)?.textContent === '1 restart',
      workerId,
      { timeout: 60_000 },
    );
    expect(await page.evaluate(() => window.stillTheSamePage)).toBe(true);

    // Scale a service from the overview: after a confirmation, a third worker, on the page without a reload.
    await page.fill('tr[data-service="parker"] .scale input', '3');
    await page.click('tr[data-service="parker"] .scale button');
    await page.waitForSelector('dialog#confirm[open]');
    expect(await page.textContent('#confirm-text')).toBe('Run 3 consumer workers for parker?');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelector('.message')?.textContent === 'parker: 3 consumer workers ready.', undefined, {
      timeout: 90_000,
    });
    expect(wharf.supervisor.status().services.find((s) => s.name === 'parker')!.workers.consumer).toBe(3);
    await page.waitForSelector('#worker-chips [data-worker="parker/consumer/2"]');
    expect(await page.evaluate(() => window.stillTheSamePage)).toBe(true);
    await page.click('#nav a[href="/workers"]');
    await page.waitForFunction((id) => document.querySelector(`#workers tr[data-worker="${id}"] .restarts`)?.textContent === '1', workerId);

    // A parked message: listed in dead letters, shown whole, replayed after a confirmation, handled.
    await producer.send({ topic: input, acks: -1, messages: [{ key: 'parked', value: JSON.stringify({ i: 'parked', fail: true }) }] });
    await waitFor(async () => wharf.supervisor.status().workers.some((w) => w.errors > 0), { timeoutMs: 60_000 });
    await page.click('#nav a[href="/dead-letters"]');
    const parked = page.locator('#dead-letters tr', { hasText: 'ERR_PARKER_REFUSED' });
    await waitFor(
      async () => {
        await page.click('text=Refresh');
        await page.waitForTimeout(1_000);
        return (await parked.count()) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 0 },
    );
    const id = await parked.first().getAttribute('data-id');
    expect(id).toMatch(new RegExp(`^${input}\\.dlq/\\d+/\\d+$`));
    await parked.first().click();
    await page.waitForSelector('#replay');
    expect(await page.textContent('.detail pre.value')).toContain('"parked"');
    await wharf.store.local.value('parker.refuse').set('no');
    await page.click('#replay');
    await page.waitForSelector('dialog#confirm[open]');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelector('#dlq-message')?.textContent?.startsWith('Replayed '));
    await page.waitForSelector(`#dead-letters tr[data-id="${id}"] .b-replayed`);
    await waitFor(async () => (await wharf.store.local.map('parker.seen').get('parked')) !== undefined, { timeoutMs: 60_000 });

    // The other pages draw from the same API without an error.
    for (const path of ['/lag', '/state']) {
      await page.click(`#nav a[href="${path}"]`);
      await page.waitForURL(`${base}${path}`);
      await page.waitForSelector(path === '/lag' ? '#lag-groups [data-group]' : '#objects tr[data-name="parker.seen"]', {
        timeout: 30_000,
      });
    }
    await page.click('#objects tr[data-name="parker.seen"]');
    await page.click('#watch');
    await page.waitForFunction(() => (document.querySelector('#changes')?.children.length ?? 0) > 0, undefined, { timeout: 30_000 });

    if (process.env.WHARF_SCREENSHOT === '1') {
      await page.click('#nav a[href="/"]');
      await page.waitForSelector('.chart path.line');
      await new Promise((done) => setTimeout(done, 30_000));
      await page.screenshot({ path: resolve(__dirname, '..', '..', 'docs', 'dashboard.png') });
    }
    expect(problems).toEqual([]);
  });
});
