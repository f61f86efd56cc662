import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { TimeoutError, WharfError } from '../errors.js';
import { stateHome } from '../paths.js';
import type { SupervisorStatus } from '../status.js';
import { computeProof, newNonce, proofMatches, readKeyFile } from './auth.js';
import {
  CLIENT_MAX_FRAME_BYTES,
  createFrameDecoder,
  encodeFrame,
  ErrorCodes,
  fromWireError,
  isHex,
  isPlainObject,
  parseFrame,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  type StateChange,
  type WireError,
} from './protocol.js';
import { connectionFilePath, findSupervisor, readConnectionFile, type ConnectionInfo } from './connection-file.js';

export interface ConnectAdminOptions {
  /** Folder of the supervisor's connection file; default stateHome() (.wharf/ or WHARF_HOME). */
  dir?: string;
  /** A socket path or 127.0.0.1:PORT, overriding the connection file's. */
  address?: string;
  /** Else `keyFile`, else the key file the connection file names, else WHARF_AUTHKEY. */
  authkey?: string;
  keyFile?: string;
  /** Connect and authenticate within this long. */
  timeoutMs?: number;
  /** Each request's reply within this long. */
  callTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface AdminWatch {
  id: number;
  unsubscribe(): Promise<void>;
}

export interface AdminClient {
  readonly address: string;
  /** The supervisor's pid and the methods it serves, from its welcome. */
  readonly server: { pid: number; methods: string[] };
  /** Settles when the connection ends: undefined when close() ended it, else why it ended. */
  readonly closed: Promise<WharfError | undefined>;
  call(method: string, params?: unknown): Promise<unknown>;
  ping(): Promise<{ pong: true; pid: number; at: number }>;
  state: {
    describe(): Promise<{ name: string; kind: string; size: number }[]>;
    /** undefined when there is no object of that name. */
    get(name: string): Promise<{ name: string; kind: string; value: unknown } | undefined>;
    set(name: string, value: unknown, kind?: string): Promise<void>;
    delete(name: string): Promise<boolean>;
    snapshot(): Promise<Record<string, { kind: string; value: unknown }>>;
    /** Calls `listener` for each change (of `name`, or of everything) until unsubscribed or closed. */
    /** `partition`: one partition of a deployment's shared state, on the member that owns it (docs/cluster.md). */
    watch(name: string | undefined, listener: (change: StateChange) => void, partition?: number): Promise<AdminWatch>;
  };
  status(): Promise<SupervisorStatus>;
  scale(service: string, consumers: number): Promise<SupervisorStatus>;
  close(): Promise<void>;
}

interface Target {
  transport: 'unix' | 'tcp';
  path?: string;
  host?: string;
  port?: number;
  address: string;
}

/** `/path/admin.sock`, `unix:/path`, `127.0.0.1:PORT` or `tcp://host:PORT`. */
export function parseAddress(address: string): Target {
  if (address.startsWith('unix:')) return { transport: 'unix', path: resolve(address.slice(5)), address };
  const tcp = /^(?:tcp:\/\/)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (tcp) return { transport: 'tcp', host: tcp[1]!.replace(/^\[|\]$/g, ''), port: Number(tcp[2]), address };
  if (address.startsWith('tcp://'))
    throw new WharfError(ErrorCodes.noSupervisor, `${address} is not a TCP address: use tcp://127.0.0.1:PORT.`);
  return { transport: 'unix', path: resolve(address), address };
}

/**
 * The key: given outright, else the key file (given, or named by the connection file of the
 * supervisor being reached), else WHARF_AUTHKEY. The supervisor's own key file wins over the
 * environment because a supervisor that wrote one was started without WHARF_AUTHKEY, so a
 * WHARF_AUTHKEY left in this shell could only be the wrong key.
 */
function resolveKey(
  options: ConnectAdminOptions,
  env: NodeJS.ProcessEnv,
  info: ConnectionInfo | undefined,
  dir: string,
): { key: string; source: string } {
  if (options.authkey) return { key: options.authkey, source: 'the given authkey' };
  const ownKeyFile = info && info.keyFile !== 'env' && (!options.address || info.address === options.address) ? info.keyFile : undefined;
  const keyFile = options.keyFile ?? ownKeyFile;
  if (keyFile) return { key: readKeyFile(keyFile), source: `the key file ${keyFile}` };
  if (env.WHARF_AUTHKEY) return { key: env.WHARF_AUTHKEY, source: 'WHARF_AUTHKEY' };
  throw new WharfError(
    ErrorCodes.noAuthkey,
    info?.keyFile === 'env'
      ? `the supervisor in ${dir} takes its key from WHARF_AUTHKEY: set it to the same value here.`
      : 'no authkey: set WHARF_AUTHKEY (or give a key file) to talk to the supervisor at that address.',
  );
}

/**
 * The key `connectAdmin(options)` would use, and the connection file it would read (for what else
 * proves itself with the key: `npm run admin -- dashboard` makes a login token with it).
 */
export function adminKey(options: ConnectAdminOptions = {}): { key: string; info: ConnectionInfo | undefined } {
  const env = options.env ?? process.env;
  const dir = resolve(options.dir ?? stateHome(env));
  const info = options.address ? safeRead(dir) : findSupervisor(dir);
  return { key: resolveKey(options, env, info, dir).key, info };
}

export async function connectAdmin(options: ConnectAdminOptions = {}): Promise<AdminClient> {
  const { timeoutMs = 5_000, callTimeoutMs = 30_000, env = process.env } = options;
  const dir = resolve(options.dir ?? stateHome(env));
  // With --address, a connection file is only a place to find the key; without, it is required.
  const info = options.address ? safeRead(dir) : findSupervisor(dir);
  const target = parseAddress(options.address ?? info!.address);
  const { key, source } = resolveKey(options, env, info, dir);

  const socket = await openSocket(target, timeoutMs, options.address ? undefined : dir);
  const decoder = createFrameDecoder(CLIENT_MAX_FRAME_BYTES);
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; timer: NodeJS.Timeout }>();
  const listeners = new Map<number, (change: StateChange) => void>();
  let nextId = 1;
  let lastError: WireError | undefined;
  let closedByUs = false;
  let onFrame: (frame: Record<string, unknown>) => void = () => undefined;

  const closed = new Promise<WharfError | undefined>((settle) => {
    socket.on('close', () => {
      const reason = closedByUs
        ? undefined
        : lastError
          ? fromWireError(lastError)
          : new WharfError(ErrorCodes.closed, `the supervisor at ${target.address} closed the connection`);
      for (const [, call] of pending) {
        clearTimeout(call.timer);
        call.reject(reason ?? new WharfError(ErrorCodes.closed, 'the admin connection was closed'));
      }
      pending.clear();
      listeners.clear();
      settle(reason);
    });
  });
  socket.on('error', () => undefined); // 'close' follows and carries the outcome
  socket.on('data', (chunk: Buffer) => {
    try {
      const { frames, error } = decoder.push(chunk);
      if (error) throw error;
      for (const body of frames) {
        const frame = parseFrame(body);
        if (!isPlainObject(frame) || frame.v !== PROTOCOL_VERSION)
          throw new WharfError(ErrorCodes.protocol, 'the server sent a frame that is not wharf admin protocol v1');
        if (frame.id === null && frame.ok === false && isPlainObject(frame.error)) lastError = frame.error as unknown as WireError;
        onFrame(frame);
      }
    } catch (error) {
      lastError = { code: ErrorCodes.protocol, message: `bad frame from the server: ${(error as Error).message}` };
      socket.destroy();
    }
  });

  const server = await handshake().catch((error: unknown) => {
    socket.destroy();
    throw error;
  });
  onFrame = route;
  return makeClient();

  function handshake(): Promise<{ pid: number; methods: string[] }> {
    return new Promise((done, reject) => {
      const timer = setTimeout(() => {
        fail(new TimeoutError(`the supervisor at ${target.address} did not complete the admin handshake within ${timeoutMs} ms`));
        socket.destroy();
      }, timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      void closed.then((reason) => fail(reason ?? new WharfError(ErrorCodes.closed, 'closed during the handshake')));
      const clientNonce = newNonce();
      let serverNonce: Buffer | undefined;
      onFrame = (frame) => {
        if (frame.type === 'challenge' && !serverNonce && isHex(frame.nonce, 32) && Array.isArray(frame.versions)) {
          if (!frame.versions.includes(PROTOCOL_VERSION)) {
            socket.destroy();
            return fail(
              new WharfError(
                ErrorCodes.protocol,
                `the supervisor speaks admin protocol ${frame.versions.join(', ')}; this client speaks ${SUPPORTED_VERSIONS.join(', ')}: use the wharf of the same release.`,
              ),
            );
          }
          serverNonce = Buffer.from(frame.nonce, 'hex');
          const proof = computeProof(key, 'client', serverNonce, clientNonce).toString('hex');
          socket.write(
            encodeFrame({ v: PROTOCOL_VERSION, type: 'auth', nonce: clientNonce.toString('hex'), proof }, CLIENT_MAX_FRAME_BYTES),
          );
        } else if (frame.type === 'welcome' && serverNonce && Number.isSafeInteger(frame.pid) && Array.isArray(frame.methods)) {
          clearTimeout(timer);
          if (!proofMatches(computeProof(key, 'server', serverNonce, clientNonce), frame.proof)) {
            socket.destroy();
            return fail(
              new WharfError(
                ErrorCodes.auth,
                `the process at ${target.address} did not prove it holds the same key: it is not the supervisor you expect.`,
              ),
            );
          }
          done({ pid: frame.pid as number, methods: frame.methods.filter((m): m is string => typeof m === 'string') });
        } else if (frame.ok === false && isPlainObject(frame.error)) {
          const error = frame.error as unknown as WireError;
          fail(
            error.code === ErrorCodes.auth
              ? new WharfError(
                  ErrorCodes.auth,
                  `authentication failed: the supervisor at ${target.address} rejected the key from ${source}.`,
                )
              : fromWireError(error),
          );
        } else {
          socket.destroy();
          fail(new WharfError(ErrorCodes.protocol, `unexpected frame during the admin handshake with ${target.address}`));
        }
      };
    });
  }

  function route(frame: Record<string, unknown>): void {
    if (typeof frame.id !== 'number') return;
    if ('event' in frame) return void listeners.get(frame.id)?.(frame.event as StateChange);
    const call = pending.get(frame.id);
    if (!call) return;
    pending.delete(frame.id);
    clearTimeout(call.timer);
    if (frame.ok === true) call.resolve(frame.result);
    else
      call.reject(
        fromWireError(
          isPlainObject(frame.error)
            ? (frame.error as unknown as WireError)
            : { code: ErrorCodes.protocol, message: 'malformed error reply' },
        ),
      );
  }

  function request(method: string, params?: unknown, id = nextId++): Promise<unknown> {
    if (socket.destroyed || closedByUs) return Promise.reject(new WharfError(ErrorCodes.closed, 'the admin connection is closed'));
    return new Promise((done, fail) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        fail(new TimeoutError(`${method} got no reply within ${callTimeoutMs} ms`, { context: { method } }));
      }, callTimeoutMs);
      pending.set(id, { resolve: done, reject: fail, timer });
      try {
        socket.write(encodeFrame({ v: PROTOCOL_VERSION, id, method, ...(params === undefined ? {} : { params }) }, CLIENT_MAX_FRAME_BYTES));
      } catch (error) {
        pending.delete(id);
        clearTimeout(timer);
        fail(error);
      }
    });
  }

  function makeClient(): AdminClient {
    return {
      address: target.address,
      server,
      closed,
      call: (method, params) => request(method, params),
      ping: () => request('ping') as Promise<{ pong: true; pid: number; at: number }>,
      state: {
        describe: () => request('state.describe') as Promise<{ name: string; kind: string; size: number }[]>,
        get: async (name) => {
          try {
            return (await request('state.get', { name })) as { name: string; kind: string; value: unknown };
          } catch (error) {
            if (error instanceof WharfError && error.code === ErrorCodes.unknownName) return undefined;
            throw error;
          }
        },
        set: async (name, value, kind) => void (await request('state.set', { name, value, ...(kind === undefined ? {} : { kind }) })),
        delete: async (name) => ((await request('state.delete', { name })) as { deleted: boolean }).deleted,
        snapshot: () => request('state.snapshot') as Promise<Record<string, { kind: string; value: unknown }>>,
        watch: async (name, listener, partition) => {
          const id = nextId++;
          // Registered before the request: events may arrive ahead of its reply.
          listeners.set(id, listener);
          try {
            await request(
              'state.watch',
              { ...(name === undefined ? {} : { name }), ...(partition === undefined ? {} : { partition }) },
              id,
            );
          } catch (error) {
            listeners.delete(id);
            throw error;
          }
          return {
            id,
            unsubscribe: async () => {
              listeners.delete(id);
              if (!socket.destroyed) await request('state.unwatch', { watch: id });
            },
          };
        },
      },
      status: () => request('status') as Promise<SupervisorStatus>,
      scale: (service, consumers) => request('scale', { service, consumers }) as Promise<SupervisorStatus>,
      close: async () => {
        closedByUs = true;
        if (!socket.destroyed) {
          socket.end();
          const timer = setTimeout(() => socket.destroy(), 1_000);
          await closed;
          clearTimeout(timer);
        }
      },
    };
  }
}

function safeRead(dir: string): ConnectionInfo | undefined {
  try {
    return readConnectionFile(dir);
  } catch {
    return undefined;
  }
}

function openSocket(target: Target, timeoutMs: number, dir: string | undefined): Promise<Socket> {
  return new Promise((done, fail) => {
    const socket = target.transport === 'unix' ? connect({ path: target.path! }) : connect({ host: target.host!, port: target.port! });
    const timer = setTimeout(() => {
      socket.destroy();
      fail(new TimeoutError(`no answer from ${target.address} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      done(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const refused = error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      fail(
        refused && dir
          ? new WharfError(
              ErrorCodes.noSupervisor,
              `no supervisor running in ${dir} (nothing answers at ${target.address}, named in ${connectionFilePath(dir)}): start one with npm start`,
              { cause: error },
            )
          : new WharfError(refused ? ErrorCodes.noSupervisor : ErrorCodes.closed, `cannot connect to ${target.address}: ${error.message}`, {
              cause: error,
            }),
      );
    });
  });
}
