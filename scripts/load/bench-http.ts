import { generateAuthkey } from '../../src/admin/auth.js';
import { adminMethods } from '../../src/admin/server.js';
import { adminStateApi } from '../../src/admin/state.js';
import { mountDashboard } from '../../src/dashboard/dashboard.js';
import { startHttpListener } from '../../src/http/server.js';
import type { Logger } from '../../src/log.js';
import { createMetricsRegistry } from '../../src/metrics/registry.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';

/**
 * `npm run bench -- --http on` (the default, as `npm start` runs): the supervisor's HTTP listener
 * as an operator uses it while the benchmark measures, so its cost shows in wharf's figures — the
 * workers count for `/metrics`, a Prometheus scrapes `/metrics` every second, and one dashboard
 * page is open on its event stream (status every second, a chart point every 2 s). `--http off`:
 * none of it, and the workers count nothing.
 */
export async function watchOverHttp(supervisor: Supervisor, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const listener = await startHttpListener({ host: '127.0.0.1', port: 0, logger });
  const registry = createMetricsRegistry({ services: () => supervisor.status().services, workers: () => supervisor.metrics() });
  listener.route('GET', '/metrics', async (_request, response) => {
    const text = await registry.text();
    response.writeHead(200, { 'Content-Type': registry.contentType });
    response.end(text);
  });
  const state = adminStateApi(supervisor.store);
  const dashboard = mountDashboard({
    listener,
    authkey: generateAuthkey(),
    methods: adminMethods({ state, status: () => supervisor.status(), scale: (s, n) => supervisor.scale(s, n) }),
    watch: state.watch,
    workers: () => supervisor.metrics(),
    lag: () => undefined,
    logger,
  });
  const login = await fetch(dashboard.loginUrl());
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const page = new AbortController();
  const events = fetch(`${listener.url}/api/events`, { headers: { Cookie: cookie }, signal: page.signal })
    .then(async (response) => {
      for await (const _chunk of response.body!) {
        // read as a page does
      }
    })
    .catch(() => undefined);
  const scraper = setInterval(() => {
    void fetch(`${listener.url}/metrics`)
      .then((r) => r.text())
      .catch(() => undefined);
  }, 1_000);
  return {
    async stop() {
      clearInterval(scraper);
      page.abort();
      await events;
      dashboard.close();
      await listener.close();
    },
  };
}
