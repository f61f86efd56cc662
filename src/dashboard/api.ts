import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminApi } from '../admin/api.js';
import { METHOD_PARAMS, toWireError, type StateChange } from '../admin/protocol.js';
import type { MethodHandler } from '../admin/session.js';
import { WharfError } from '../errors.js';
import type { HttpHandler } from '../http/server.js';
import type { Logger } from '../log.js';
import type { LagReport } from '../metrics/lag-monitor.js';
import type { History } from './history.js';

/**
 * The dashboard's JSON API: a thin HTTP face over the admin socket's methods (`status`, `lag`,
 * `state.describe`, `state.get`, `dlq.list`, `dlq.show`, `dlq.replay`, `scale`: the same bound
 * functions `npm run admin` reaches, their params checked the same way), and two streams of
 * server-sent events: the deployment's status, chart points and lag as they change, and the
 * changes to one shared object. Authentication is the caller's (dashboard.ts).
 */
export interface DashboardApiOptions {
  methods: Map<string, MethodHandler>;
  watch: AdminApi['state']['watch'];
  history: History;
  lag: () => LagReport | undefined;
  logger: Logger;
}

export interface DashboardRoute {
  method: 'GET' | 'POST';
  path: string;
  handler: HttpHandler;
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_STREAMS = 32;
const MAX_EVENT_BYTES = 256 * 1024;
const STATUS_EVERY_MS = 1_000;
const KEEPALIVE_MS = 15_000;

export function dashboardApi({ methods, watch, history, lag, logger }: DashboardApiOptions): { routes: DashboardRoute[]; close(): void } {
  const streams = new Set<() => void>();

  async function call(response: ServerResponse, method: string, params: unknown): Promise<void> {
    const handler = methods.get(method);
    if (!handler)
      return json(response, 404, { error: { code: 'ERR_UNKNOWN_METHOD', message: `this supervisor does not serve ${method}` } });
    try {
      json(response, 200, (await handler(params)) ?? null);
    } catch (error) {
      if (!(error instanceof WharfError)) logger.error({ err: error, method }, 'dashboard: admin method failed');
      const wire = toWireError(error);
      json(response, statusOf(wire.code), { error: wire });
    }
  }

  const get = (path: string, handler: HttpHandler): DashboardRoute => ({ method: 'GET', path, handler });
  const post = (path: string, method: string): DashboardRoute => ({
    method: 'POST',
    path,
    handler: async (request, response) => {
      const body = await readJson(request);
      if (body instanceof BadBody) return json(response, body.status, { error: { code: 'ERR_BAD_PARAMS', message: body.message } });
      await call(response, method, body);
    },
  });

  /** One server-sent-events stream: `send(event, data)` until the client goes; `stop` runs then. */
  function stream(request: IncomingMessage, response: ServerResponse, start: (send: (event: string, data: unknown) => void) => () => void) {
    if (streams.size >= MAX_STREAMS)
      return json(response, 503, { error: { code: 'ERR_BUSY', message: `${MAX_STREAMS} streams are open already` } });
    response.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    response.write('retry: 2000\n\n');
    const send = (event: string, data: unknown) => {
      if (response.destroyed) return;
      response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      // A page that does not read (a laptop asleep) is dropped, not buffered for.
      if (response.writableLength > 4 * MAX_EVENT_BYTES) response.destroy();
    };
    const keepalive = setInterval(() => response.write(': keepalive\n\n'), KEEPALIVE_MS);
    let stopStream: () => void = () => undefined;
    const end = () => {
      clearInterval(keepalive);
      streams.delete(end);
      stopStream();
      if (!response.destroyed) response.destroy();
    };
    streams.add(end);
    request.on('close', end);
    response.on('error', end);
    stopStream = start(send);
  }

  const routes: DashboardRoute[] = [
    get('/api/status', (_q, response) => call(response, 'status', {})),
    get('/api/history', (_q, response) => json(response, 200, { intervalMs: history.intervalMs, points: history.points() })),
    get('/api/lag', (_q, response) => call(response, 'lag', {})),
    get('/api/state', (_q, response) => call(response, 'state.describe', {})),
    get('/api/state/object', (_q, response, url) => call(response, 'state.get', { name: url.searchParams.get('name') })),
    get('/api/dead-letters', (_q, response, url) => {
      const topic = url.searchParams.get('topic');
      const limit = url.searchParams.get('limit');
      return call(response, 'dlq.list', {
        ...(topic ? { topic } : {}),
        ...(limit !== null ? { limit: /^\d{1,6}$/.test(limit) ? Number(limit) : limit } : {}),
      });
    }),
    get('/api/dead-letters/show', (_q, response, url) => call(response, 'dlq.show', { id: url.searchParams.get('id') })),
    post('/api/dead-letters/replay', 'dlq.replay'),
    post('/api/scale', 'scale'),
    get('/api/events', (request, response) =>
      stream(request, response, (send) => {
        let lagAt: string | undefined;
        const tick = () => {
          const status = methods.get('status');
          if (status) send('status', status({}));
          const report = lag();
          if (report && report.at !== lagAt) send('lag', report);
          lagAt = report?.at;
        };
        tick();
        const timer = setInterval(tick, STATUS_EVERY_MS);
        const off = history.onPoint((point) => send('point', point));
        return () => {
          clearInterval(timer);
          off();
        };
      }),
    ),
    get('/api/state/watch', (request, response, url) => {
      let name: string | undefined;
      try {
        ({ name } = METHOD_PARAMS['state.watch']({ name: url.searchParams.get('name') }));
      } catch (error) {
        return json(response, 400, { error: toWireError(error) });
      }
      stream(request, response, (send) => watch(name, (change) => send('change', boundedChange(change))));
    }),
  ];
  return { routes, close: () => [...streams].forEach((end) => end()) };
}

/** A change too large (or not JSON) for an event: that it changed, without the value. */
function boundedChange(change: StateChange): unknown {
  try {
    if (JSON.stringify(change).length <= MAX_EVENT_BYTES) return change;
  } catch {
    // not JSON: below
  }
  return { name: change.name, kind: change.kind, op: change.op, at: change.at, truncated: true };
}

function statusOf(code: string): number {
  if (code === 'ERR_BAD_PARAMS' || code === 'ERR_USAGE') return 400;
  if (code === 'ERR_UNKNOWN_NAME' || code === 'ERR_DLQ_NOT_FOUND' || code === 'ERR_UNKNOWN_SERVICE') return 404;
  if (code === 'ERR_BUSY' || code === 'ERR_STOPPING' || code === 'ERR_SHUTTING_DOWN') return 503;
  return 500;
}

export function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  response.end(text);
}

class BadBody {
  constructor(
    readonly status: number,
    readonly message: string,
  ) {}
}

/** A JSON object body of at most MAX_BODY_BYTES, sent as application/json (a plain form cannot send that without CORS). */
async function readJson(request: IncomingMessage): Promise<unknown> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) return new BadBody(415, 'send the body as Content-Type: application/json');
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return new BadBody(413, `a body is at most ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return new BadBody(413, `a body is at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return new BadBody(400, 'the body is a JSON object');
    return value;
  } catch {
    return new BadBody(400, 'the body is not JSON');
  }
}
