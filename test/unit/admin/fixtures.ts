import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import { workerCountError } from '../../../src/config/schema.js';
import { WharfError } from '../../../src/errors.js';
import { createLogger, type Logger } from '../../../src/log.js';
import { startAdminServer, type AdminApi, type AdminServer, type AdminServerOptions } from '../../../src/admin/server.js';
import { connectAdmin, type AdminClient, type ConnectAdminOptions } from '../../../src/admin/client.js';
import { computeProof, newNonce } from '../../../src/admin/auth.js';
import { CLIENT_MAX_FRAME_BYTES, createFrameDecoder, encodeFrame, type StateChange } from '../../../src/admin/protocol.js';
import type { SupervisorStatus } from '../../../src/status.js';
import { waitFor } from '../../wait.js';

/**
 * A small in-memory AdminApi standing in for the supervisor: named objects in a Map, changes to
 * listeners, two services whose consumer count `scale` changes.
 */
export function memoryApi(initial: Record<string, { kind: string; value: unknown }> = {}) {
  const objects = new Map(Object.entries(initial));
  const listeners = new Set<{ name: string | undefined; listener: (change: StateChange) => void }>();
  const consumers: Record<string, number> = { tony: 1, jarvis: 2 };
  const emit = (change: StateChange) => {
    for (const l of [...listeners]) if (l.name === undefined || l.name === change.name) l.listener(change);
  };
  const status = (): SupervisorStatus => ({
    pid: process.pid,
    startedAt: new Date(0).toISOString(),
    uptimeMs: 61_000,
    brokers: ['127.0.0.1:9092'],
    services: Object.entries(consumers).map(([name, n]) => ({
      name,
      health: 'healthy',
      reason: null,
      workers: { consumer: n, producer: 1 },
      handled: 10 * n,
      restarts: 0,
    })),
    workers: Object.entries(consumers).flatMap(([service, n]) =>
      Array.from({ length: n }, (_, i) => ({
        workerId: `${service}/consumer/${i}`,
        service,
        role: 'consumer' as const,
        state: 'ready' as const,
        threadId: i + 1,
        restarts: i,
        handled: 10,
        errors: 0,
        startedAt: new Date(0).toISOString(),
        lastHeartbeatAt: new Date().toISOString(),
        heapUsedBytes: 12 * 1024 * 1024,
        lastError: null,
      })),
    ),
  });
  const api: AdminApi = {
    state: {
      describe: () =>
        [...objects].map(([name, o]) => ({
          name,
          kind: o.kind,
          size: Array.isArray(o.value) ? o.value.length : o.value && typeof o.value === 'object' ? Object.keys(o.value).length : 1,
        })),
      get: (name) => objects.get(name),
      set: (name, value, kind) => {
        const entry = { kind: kind ?? objects.get(name)?.kind ?? 'value', value };
        objects.set(name, entry);
        emit({ name, kind: entry.kind, op: 'set', value, at: Date.now() });
      },
      delete: (name) => {
        const entry = objects.get(name);
        if (!entry) return false;
        objects.delete(name);
        emit({ name, kind: entry.kind, op: 'delete', at: Date.now() });
        return true;
      },
      snapshot: () => Object.fromEntries(objects),
      watch: (name, listener) => {
        const entry = { name, listener };
        listeners.add(entry);
        return () => listeners.delete(entry);
      },
    },
    status,
    scale: async (service, n) => {
      if (!(service in consumers))
        throw new WharfError('ERR_UNKNOWN_SERVICE', `no service named "${service}": services are ${Object.keys(consumers).join(', ')}`);
      const invalid = workerCountError(service, 'consumer', n);
      if (invalid) throw invalid;
      consumers[service] = n;
      return status();
    },
  };
  return { api, objects, listenerCount: () => listeners.size };
}

export { waitFor };

export const silentLogger: Logger = createLogger({ level: 'silent' });

/** A fresh folder for one test's connection file, removed when the test ends. */
export function tempDir(prefix = 'wharf-admin-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const TEST_KEY = 'test-key-0123456789abcdef';

/** A server over `api` in a fresh folder, closed when the test ends (pass or fail). */
export async function serverForTest(api: AdminApi, options: Partial<AdminServerOptions> = {}): Promise<AdminServer & { dir: string }> {
  const dir = options.dir ?? tempDir();
  const server = await startAdminServer({ api, dir, logger: silentLogger, env: {}, authkey: TEST_KEY, ...options });
  onTestFinished(() => server.close());
  return { ...server, dir };
}

/** A client closed when the test ends. */
export async function clientForTest(options: ConnectAdminOptions): Promise<AdminClient> {
  const client = await connectAdmin({ env: {}, authkey: TEST_KEY, ...options });
  onTestFinished(() => client.close());
  return client;
}

export interface RawConnection {
  socket: Socket;
  /** Every frame received, parsed, in order. */
  frames: Record<string, unknown>[];
  /** The bodies exactly as received, to compare answers byte for byte. */
  bodies: Buffer[];
  closed: Promise<void>;
  isClosed(): boolean;
  send(frame: object): void;
  /** Waits for the n-th frame (1-based) and returns it. */
  frame(n: number, timeoutMs?: number): Promise<Record<string, unknown>>;
  authenticate(key?: string): Promise<void>;
}

/** A socket speaking frames with no client library in between, destroyed when the test ends. */
export async function rawConnection(address: string): Promise<RawConnection> {
  const tcp = /^127\.0\.0\.1:(\d+)$/.exec(address);
  const socket = tcp ? connect({ host: '127.0.0.1', port: Number(tcp[1]) }) : connect({ path: address });
  onTestFinished(() => void socket.destroy());
  const decoder = createFrameDecoder(CLIENT_MAX_FRAME_BYTES);
  const frames: Record<string, unknown>[] = [];
  const bodies: Buffer[] = [];
  let ended = false;
  const closed = new Promise<void>((done) => socket.on('close', () => ((ended = true), done())));
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    const { frames: bodiesIn, error } = decoder.push(chunk);
    if (error) throw error;
    for (const body of bodiesIn) {
      bodies.push(Buffer.from(body));
      frames.push(JSON.parse(body.toString('utf8')));
    }
  });
  await new Promise<void>((done, fail) => {
    socket.once('connect', done);
    socket.once('error', fail);
  });
  const raw: RawConnection = {
    socket,
    frames,
    bodies,
    closed,
    isClosed: () => ended,
    send: (frame) => void socket.write(encodeFrame(frame, CLIENT_MAX_FRAME_BYTES)),
    frame: (n, timeoutMs = 10_000) =>
      waitFor(() => frames[n - 1], { timeoutMs, message: `frame ${n} (have ${frames.length}: ${JSON.stringify(frames).slice(0, 300)})` }),
    async authenticate(key = TEST_KEY) {
      const challenge = await raw.frame(1);
      const serverNonce = Buffer.from(challenge.nonce as string, 'hex');
      const clientNonce = newNonce();
      raw.send({
        v: 1,
        type: 'auth',
        nonce: clientNonce.toString('hex'),
        proof: computeProof(key, 'client', serverNonce, clientNonce).toString('hex'),
      });
      const welcome = await raw.frame(2);
      if (welcome.type !== 'welcome') throw new Error(`not welcomed: ${JSON.stringify(welcome)}`);
    },
  };
  return raw;
}
