import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkAuthkey, generateAuthkey, writeKeyFile } from './auth.js';
import { encodeFrame, errorFrame, ErrorCodes, METHOD_PARAMS, resolveLimits, type AdminLimits } from './protocol.js';
import {
  connectionFilePath,
  KEY_FILE,
  refuseIfInUse,
  removeConnectionFile,
  removeStaleSocket,
  unixSocketPath,
  writeConnectionFile,
  type AdminTransport,
  type ConnectionInfo,
} from './connection-file.js';
import { openSession, type MethodHandler, type ServerContext } from './session.js';
import type { AdminApi } from './api.js';

export type { AdminApi };

export interface AdminServerOptions {
  api: AdminApi;
  /** Where the connection file (and key file, and socket when the path fits) go: stateHome(). */
  dir: string;
  /** Else WHARF_AUTHKEY, else a random key in a 0600 key file next to the connection file. */
  authkey?: string;
  transport?: AdminTransport;
  /** TCP port; 0 (default) lets the system pick one. */
  port?: number;
  /** TCP interface (default 127.0.0.1): another host's supervisors of a deployment need one they can reach (docs/cluster.md). */
  host?: string;
  logger: Logger;
  limits?: Partial<AdminLimits>;
  env?: NodeJS.ProcessEnv;
  /** The supervisor's HTTP listener (HOST:PORT), recorded in the connection file for tools that look for it. */
  http?: string;
}

export interface AdminServer {
  address: string;
  transport: AdminTransport;
  connectionFile: string;
  /** The key file clients on this machine read the key from; 'env' when the key is WHARF_AUTHKEY's. */
  keyFile: string;
  /** The deployment's key, for what proves itself with an HMAC of it (the dashboard's login tokens); never sent. */
  readonly authkey: string;
  close(): Promise<void>;
}

export async function startAdminServer({
  api,
  dir,
  authkey,
  transport = 'unix',
  port = 0,
  host = '127.0.0.1',
  logger: parent,
  limits,
  env = process.env,
  http,
}: AdminServerOptions): Promise<AdminServer> {
  const logger = parent.child({ component: 'admin' });
  const resolvedLimits = resolveLimits(limits);
  if (transport !== 'unix' && transport !== 'tcp')
    throw new ConfigError(`transport must be "unix" or "tcp"; got ${JSON.stringify(transport)}.`);
  dir = resolve(dir);
  mkdirSync(dir, { recursive: true });
  refuseIfInUse(dir);

  const methods = adminMethods(api);
  if ((api.state.call === undefined) !== (api.state.release === undefined)) {
    throw new ConfigError(
      'api.state.call and api.state.release go together: without release, a closed connection would keep its locks until their leases end.',
    );
  }
  const explicitKey = authkey ?? (env.WHARF_AUTHKEY || undefined);
  const key =
    explicitKey === undefined ? generateAuthkey() : checkAuthkey(explicitKey, authkey === undefined ? 'WHARF_AUTHKEY' : 'options.authkey');
  const sessionMethods = ['state.watch', 'state.unwatch', ...(api.state.call ? ['state.call'] : [])];
  const ctx: ServerContext = {
    api,
    key,
    limits: resolvedLimits,
    logger,
    methods,
    methodNames: [...methods.keys(), ...sessionMethods].sort(),
    asyncMethods: new Set(['scale', ...Object.keys(api.extra ?? {})]),
  };
  let connections = 0;

  const sockets = new Set<Socket>();
  const sessions = new Set<{ shutdown(): void }>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (error) => logger.debug({ err: error }, 'admin connection error'));
    if (sessions.size >= resolvedLimits.maxConnections) {
      logger.warn({ maxConnections: resolvedLimits.maxConnections }, 'admin connection refused: too many connections');
      socket.end(
        encodeFrame(
          errorFrame(null, {
            code: ErrorCodes.tooManyConnections,
            message: `the supervisor already serves ${resolvedLimits.maxConnections} admin connections: close one and retry`,
            retriable: true,
          }),
          resolvedLimits.maxReplyBytes,
        ),
      );
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    // The holder of this connection's locks and waits: `@admin/7` in lock info and logs.
    const session = openSession(socket, ctx, `@admin/${++connections}`, () => sessions.delete(session));
    sessions.add(session);
  });

  let socketPath: string | undefined;
  let privateDir: string | undefined;
  let address: string;
  const keyFile = explicitKey === undefined ? join(dir, KEY_FILE) : 'env';
  const removeFiles = () => {
    if (keyFile !== 'env') rmSync(keyFile, { force: true });
    if (socketPath) rmSync(socketPath, { force: true });
    if (privateDir) rmSync(privateDir, { recursive: true, force: true });
  };
  let info: ConnectionInfo;
  try {
    if (transport === 'unix') {
      ({ path: socketPath, privateDir } = unixSocketPath(dir));
      removeStaleSocket(socketPath);
      await listen(server, { path: socketPath });
      // The authkey is the guard; 0600 keeps other users from even reaching the handshake.
      chmodSync(socketPath, 0o600);
      address = socketPath;
    } else {
      await listen(server, { host, port });
      address = `${host.includes(':') ? `[${host}]` : host}:${(server.address() as { port: number }).port}`;
    }
    if (keyFile !== 'env') writeKeyFile(keyFile, key);
    info = { version: 1, pid: process.pid, transport, address, keyFile, startedAt: new Date().toISOString(), ...(http ? { http } : {}) };
    writeConnectionFile(dir, info);
  } catch (error) {
    server.close();
    removeFiles();
    throw error;
  }
  logger.info({ address, transport, keyFile }, 'admin socket listening');

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      const closed = new Promise<void>((done) => server.close(() => done()));
      for (const session of sessions) session.shutdown();
      const timer = setTimeout(() => sockets.forEach((s) => s.destroy()), 2_000);
      await closed;
      clearTimeout(timer);
      removeConnectionFile(dir, info);
      removeFiles();
      logger.debug({ address }, 'admin socket closed');
    })();
    return closing;
  }
  return { address, transport, connectionFile: connectionFilePath(dir), keyFile, authkey: key, close };
}

/**
 * Every method by wire name, bound to the supervisor's API and checking its params: the built-in
 * ones and `api.extra`'s (state.watch/unwatch/call live in the session). The socket serves these,
 * and so does the dashboard's JSON API (src/dashboard/api.ts): one implementation of each.
 */
export function adminMethods(api: AdminApi): Map<string, MethodHandler> {
  const methods = bindMethods(api);
  for (const name of Object.keys(api.extra ?? {})) {
    if (methods.has(name) || name in METHOD_PARAMS || !/^[a-z][A-Za-z0-9._-]{0,63}$/.test(name)) {
      throw new ConfigError(
        `api.extra.${name} cannot be an admin method: names are 1-64 of [A-Za-z0-9._-], start lower-case and are not built-in.`,
      );
    }
    const fn = api.extra![name]!;
    methods.set(name, (params) => fn(params));
  }
  return methods;
}

function bindMethods(api: AdminApi): Map<string, MethodHandler> {
  const p = METHOD_PARAMS;
  return new Map<string, MethodHandler>([
    ['ping', (params) => (p.ping(params), { pong: true, pid: process.pid, at: Date.now() })],
    ['state.describe', (params) => (p['state.describe'](params), api.state.describe())],
    [
      'state.get',
      (params) => {
        const { name } = p['state.get'](params);
        const found = (entry: { kind: string; value: unknown } | undefined) => {
          if (!entry) throw new WharfError(ErrorCodes.unknownName, `no shared object named ${JSON.stringify(name)}`, { context: { name } });
          return { name, kind: entry.kind, value: entry.value };
        };
        // A deployment's shared object may be read on its owner (src/cluster/): then a promise.
        const entry = api.state.get(name);
        return isPromiseLike(entry) ? Promise.resolve(entry).then(found) : found(entry);
      },
    ],
    [
      'state.set',
      (params) => {
        const { name, value, kind } = p['state.set'](params);
        api.state.set(name, value, kind);
        return null;
      },
    ],
    ['state.delete', (params) => ({ deleted: api.state.delete(p['state.delete'](params).name) })],
    ['state.snapshot', (params) => (p['state.snapshot'](params), api.state.snapshot())],
    ['status', (params) => (p.status(params), api.status())],
    [
      'scale',
      (params) => {
        const { service, consumers } = p.scale(params);
        return api.scale(service, consumers);
      },
    ],
  ]);
}

function listen(server: Server, options: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((done, fail) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = 'path' in options ? options.path : `${options.host}:${options.port}`;
      fail(new WharfError(ErrorCodes.inUse, `cannot listen for admin connections on ${where}: ${error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      done();
    });
  });
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
