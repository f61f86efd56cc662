import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminApi } from '../admin/api.js';
import type { MethodHandler } from '../admin/session.js';
import type { HttpHandler, HttpListener } from '../http/server.js';
import type { Logger } from '../log.js';
import type { LagReport } from '../metrics/lag-monitor.js';
import type { WorkerMetrics } from '../metrics/registry.js';
import { packageRoot } from '../paths.js';
import { dashboardApi } from './api.js';
import { startHistory } from './history.js';
import { createLoginGate, createLoginToken, loginUrl } from './login.js';
import { createSessions, sameOrigin, unauthorized } from './sessions.js';

/**
 * The live web dashboard on the supervisor's HTTP listener (docs/observability.md, Dashboard):
 * pages and their scripts and styles from wharf's own `dashboard/` folder (no CDN, no build), the
 * JSON API and event streams of api.ts. Everything but `/login` needs a session, which only a
 * login token made with the deployment's key opens; without one every path answers 401.
 */
export interface DashboardOptions {
  listener: HttpListener;
  /** The deployment's authkey (the admin socket's): login tokens are HMACs of it. */
  authkey: string;
  /** The admin socket's methods (`adminMethods(api)`). */
  methods: Map<string, MethodHandler>;
  watch: AdminApi['state']['watch'];
  workers: () => WorkerMetrics[];
  lag: () => LagReport | undefined;
  logger: Logger;
}

export interface Dashboard {
  /** A fresh one-time login URL (valid for an hour). */
  loginUrl(): string;
  close(): void;
}

/** The pages; each is the same document, its script draws the page its path names. */
export const DASHBOARD_PAGES = ['/', '/workers', '/lag', '/state', '/dead-letters'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** No inline script or style anywhere: the page's code comes from this origin's files only. */
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function mountDashboard({ listener, authkey, methods, watch, workers, lag, logger: parent }: DashboardOptions): Dashboard {
  const logger = parent.child({ component: 'dashboard' });
  const gate = createLoginGate(authkey);
  const sessions = createSessions(`wharf_session_${listener.address.replace(/[^0-9A-Za-z]/g, '_')}`);
  const history = startHistory(workers);
  const api = dashboardApi({ methods, watch, history, lag, logger });

  /** Every route but /login: a live session, and for what changes something, this host's Origin. */
  const guarded =
    (handler: HttpHandler, changes = false): HttpHandler =>
    (request, response, url) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
      if (!sessions.valid(request) || (changes && !sameOrigin(request))) return unauthorized(response);
      return handler(request, response, url);
    };

  const folder = join(packageRoot(), 'dashboard');
  const page = readFileSync(join(folder, 'index.html'));
  for (const path of DASHBOARD_PAGES)
    listener.route(
      'GET',
      path,
      guarded((_q, response) => file(response, '.html', page)),
    );
  for (const name of readdirSync(folder)) {
    if (name === 'index.html' || !CONTENT_TYPES[extname(name)]) continue;
    const bytes = readFileSync(join(folder, name));
    listener.route(
      'GET',
      `/assets/${name}`,
      guarded((_q, response) => file(response, extname(name), bytes)),
    );
  }
  for (const { method, path, handler } of api.routes) listener.route(method, path, guarded(handler, method !== 'GET'));

  listener.route('GET', '/login', (request, response, url) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
    if (!gate.admit(url.searchParams.get('token'))) {
      logger.warn({ remote: request.socket.remoteAddress }, 'dashboard login refused (a wrong, used or expired token)');
      return unauthorized(response);
    }
    logger.info({ remote: request.socket.remoteAddress }, 'dashboard login');
    // A document of our own that moves on to the overview: a same-site navigation, so the Strict cookie goes with it.
    // Its icon is inline: a browser asking for /favicon.ico would get a 404 (and log it) while it moves on.
    const body =
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><meta http-equiv="refresh" content="0;url=/"><title>wharf</title><a href="/">Logged in</a>\n';
    response.writeHead(200, {
      'Set-Cookie': sessions.open(),
      'Content-Type': CONTENT_TYPES['.html']!,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    response.end(body);
  });
  listener.route(
    'POST',
    '/logout',
    guarded((request: IncomingMessage, response: ServerResponse) => {
      response.writeHead(204, { 'Set-Cookie': sessions.close(request), 'Cache-Control': 'no-store' });
      response.end();
    }, true),
  );

  return {
    loginUrl: () => loginUrl(listener.url, createLoginToken(authkey)),
    close() {
      history.stop();
      api.close();
    },
  };
}

function file(response: ServerResponse, ext: string, bytes: Buffer): void {
  response.writeHead(200, { 'Content-Type': CONTENT_TYPES[ext]!, 'Content-Length': bytes.length, 'Cache-Control': 'no-cache' });
  response.end(bytes);
}
