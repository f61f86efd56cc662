import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The supervisor's one HTTP listener (`/metrics`, later the dashboard). Routes are exact paths
 * registered with `route()`; anything else answers 404, a known path with another method 405
 * (with `Allow`), a request Node cannot parse 400, and a handler that throws 500: no request
 * can take the supervisor down.
 */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export type HttpHandler = (request: IncomingMessage, response: ServerResponse, url: URL) => void | Promise<void>;

export interface HttpListenerOptions {
  host: string;
  /** 0 lets the system pick a free port. */
  port: number;
  logger: Logger;
  /** When the port is taken, listen on a free one instead (with a warning) rather than failing. */
  fallbackToFreePort?: boolean;
}

export interface HttpListener {
  /** HOST:PORT as bound (the port the system picked when asked for 0). */
  readonly address: string;
  /** http://HOST:PORT */
  readonly url: string;
  /** Serves `path` (exact, e.g. `/metrics`) for `method`; GET routes answer HEAD too. A path and method serve once. */
  route(method: HttpMethod, path: string, handler: HttpHandler): void;
  /** Stops listening and ends open connections (keep-alive ones too). */
  close(): Promise<void>;
}

/** Requests must arrive whole within this; a slow client is cut off rather than held. */
const REQUEST_TIMEOUT_MS = 30_000;

export async function startHttpListener({
  host,
  port,
  logger: parent,
  fallbackToFreePort = false,
}: HttpListenerOptions): Promise<HttpListener> {
  const logger = parent.child({ component: 'http' });
  const routes = new Map<string, Map<string, HttpHandler>>();
  const sockets = new Set<Socket>();

  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: 10_000 }, (request, response) => {
    void serve(request, response);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Bytes that are not HTTP: one 400 and the connection ends; nothing reaches a handler.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    logger.debug({ err: error }, 'bad HTTP request');
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable && error.code !== 'ECONNRESET') socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://wharf.invalid');
    } catch {
      return plain(response, 400, 'bad request target\n');
    }
    const byMethod = routes.get(url.pathname);
    if (!byMethod) return plain(response, 404, `no such path: ${url.pathname}\n`);
    const method = request.method === 'HEAD' ? 'GET' : (request.method ?? '');
    const handler = byMethod.get(method);
    if (!handler) {
      response.setHeader('Allow', [...byMethod.keys(), ...(byMethod.has('GET') ? ['HEAD'] : [])].join(', '));
      return plain(response, 405, `${request.method} is not allowed on ${url.pathname}\n`);
    }
    try {
      await handler(request, response, url);
    } catch (error) {
      logger.error({ err: error, path: url.pathname }, 'HTTP handler failed');
      if (!response.headersSent) plain(response, 500, 'internal error (logged by the supervisor)\n');
      else response.destroy();
    }
  }

  const bound = await listen(server, host, port).catch(async (error: NodeJS.ErrnoException) => {
    if (!fallbackToFreePort || error.code !== 'EADDRINUSE') throw inUse(host, port, error);
    const address = await listen(server, host, 0).catch((again: NodeJS.ErrnoException) => {
      throw inUse(host, 0, again);
    });
    logger.warn(
      { wanted: `${host}:${port}`, address },
      `HTTP port ${port} is taken (another supervisor?): listening on ${address} instead; --http HOST:PORT picks one`,
    );
    return address;
  });
  const url = `http://${bound}`;
  logger.debug({ address: bound }, 'HTTP listening');

  let closing: Promise<void> | undefined;
  return {
    address: bound,
    url,
    route(method, path, handler) {
      if (!path.startsWith('/')) throw new WharfError('ERR_CONFIG', `An HTTP route's path starts with "/"; got "${path}".`);
      const byMethod = routes.get(path) ?? new Map<string, HttpHandler>();
      if (byMethod.has(method)) throw new WharfError('ERR_CONFIG', `${method} ${path} is served already.`);
      byMethod.set(method, handler);
      routes.set(path, byMethod);
    },
    close() {
      closing ??= new Promise<void>((done) => {
        server.close(() => done());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function plain(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

function inUse(host: string, port: number, error: NodeJS.ErrnoException): WharfError {
  return new WharfError(
    'ERR_HTTP_LISTEN',
    `Cannot listen for HTTP on ${host}:${port}: ${error.message}. Choose another with --http HOST:PORT (port 0: any free one), or --http off.`,
    { cause: error, context: { host, port } },
  );
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const address = server.address();
      const bound = typeof address === 'object' && address ? address : { address: host, port };
      resolve(`${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`);
    });
  });
}
