import type { Socket } from 'node:net';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AdminApi } from './api.js';
import { computeProof, newNonce, NONCE_BYTES, proofMatches } from './auth.js';
import {
  checkRequest,
  createFrameDecoder,
  encodeFrame,
  errorFrame,
  ErrorCodes,
  hasOnlyKeys,
  isHex,
  isPlainObject,
  MAX_AUTH_FRAME_BYTES,
  METHOD_PARAMS,
  parseFrame,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  toWireError,
  type AdminLimits,
  type StateChange,
  type WireError,
} from './protocol.js';

/** One authenticated admin connection: the handshake, then requests and watch streams. */

export type MethodHandler = (params: unknown) => unknown;

const AUTH_FAILED = 'authentication failed: check WHARF_AUTHKEY or the key file named in the connection file';

export interface ServerContext {
  api: AdminApi;
  key: string;
  limits: AdminLimits;
  logger: Logger;
  methods: Map<string, MethodHandler>;
  methodNames: string[];
  /** Methods whose result is a promise: only these count against maxInFlightPerConnection. */
  asyncMethods: Set<string>;
}

/**
 * One connection: challenge, verify, then requests until either side closes. Everything that
 * goes wrong here ends this connection at worst; nothing is thrown to the server.
 */
export function openSession(socket: Socket, ctx: ServerContext, holderId: string, onClosed: () => void): { shutdown(): void } {
  const { limits, logger } = ctx;
  let phase: 'auth' | 'ready' | 'closing' = 'auth';
  const serverNonce = newNonce();
  const decoder = createFrameDecoder(MAX_AUTH_FRAME_BYTES);
  const watches = new Map<number, () => void>();
  let inFlight = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let failTimer: NodeJS.Timeout | undefined;
  const authTimer = setTimeout(
    () => endWith({ code: ErrorCodes.authTimeout, message: `no valid auth frame within ${limits.authTimeoutMs} ms` }),
    limits.authTimeoutMs,
  );

  socket.on('data', onData);
  socket.on('close', () => {
    phase = 'closing';
    for (const timer of [authTimer, idleTimer, failTimer]) clearTimeout(timer);
    releaseWatches();
    // A client that died (even by SIGKILL) frees its locks and permits here, and its waits end.
    if (ctx.api.state.release) safely(() => ctx.api.state.release!(holderId));
    onClosed();
  });
  write(
    encodeFrame(
      {
        v: PROTOCOL_VERSION,
        type: 'challenge',
        nonce: serverNonce.toString('hex'),
        versions: SUPPORTED_VERSIONS,
        hmac: 'sha256',
        maxFrameBytes: limits.maxFrameBytes,
      },
      limits.maxReplyBytes,
    ),
  );

  function onData(chunk: Buffer): void {
    if (phase === 'closing') return;
    const { frames, error } = decoder.push(chunk);
    for (const body of frames) {
      if (phase === 'auth') authenticate(body);
      else if (phase === 'ready') handle(body);
    }
    // Re-read: serving the frames above may have ended the connection.
    const now = phase as typeof phase | 'closing';
    if (!error || now === 'closing') return;
    if (now === 'auth') failAuth();
    else endWith(toWireError(error));
  }

  function authenticate(body: Buffer): void {
    clearTimeout(authTimer);
    let frame: unknown;
    try {
      frame = parseFrame(body);
    } catch {
      frame = undefined;
    }
    const auth =
      isPlainObject(frame) &&
      frame.v === PROTOCOL_VERSION &&
      frame.type === 'auth' &&
      hasOnlyKeys(frame, ['v', 'type', 'nonce', 'proof']) &&
      isHex(frame.nonce, NONCE_BYTES)
        ? frame
        : undefined;
    const clientNonce = auth ? Buffer.from(auth.nonce as string, 'hex') : Buffer.alloc(NONCE_BYTES);
    // Computed and compared whether or not the frame was well formed, so every failure costs the same.
    const matches = proofMatches(computeProof(ctx.key, 'client', serverNonce, clientNonce), auth?.proof);
    if (!matches || !auth) return failAuth();
    phase = 'ready';
    decoder.maxFrameBytes = limits.maxFrameBytes;
    const proof = computeProof(ctx.key, 'server', serverNonce, clientNonce).toString('hex');
    write(encodeFrame({ v: PROTOCOL_VERSION, type: 'welcome', proof, pid: process.pid, methods: ctx.methodNames }, limits.maxReplyBytes));
    idleTimer = setTimeout(onIdle, limits.idleTimeoutMs);
  }

  /** One answer after one fixed delay for every way of failing, then close. */
  function failAuth(): void {
    clearTimeout(authTimer);
    phase = 'closing';
    socket.pause();
    logger.warn({ remote: socket.remoteAddress ?? 'unix socket' }, 'admin client failed authentication');
    failTimer = setTimeout(() => endWith({ code: ErrorCodes.auth, message: AUTH_FAILED }), limits.authFailureDelayMs);
  }

  function handle(body: Buffer): void {
    idleTimer?.refresh();
    let id: number | null = null;
    try {
      const request = checkRequest(parseFrame(body));
      id = request.id;
      if (request.method === 'state.watch') return replyOk(id, watch(id, request.params));
      if (request.method === 'state.unwatch') return replyOk(id, unwatch(request.params));
      const stateCall = request.method === 'state.call' && ctx.api.state.call !== undefined;
      const handler = stateCall ? callState : ctx.methods.get(request.method);
      if (!handler)
        throw new WharfError(
          ErrorCodes.unknownMethod,
          `unknown method ${JSON.stringify(request.method)}; methods: ${ctx.methodNames.join(', ')}`,
        );
      // A state.call may wait (a lock, a queue, a persisted write): counted whether or not this one would.
      if ((stateCall || ctx.asyncMethods.has(request.method)) && inFlight >= limits.maxInFlightPerConnection) {
        throw new WharfError(ErrorCodes.busy, `${inFlight} requests of this connection are still running: wait for their replies`, {
          retriable: true,
        });
      }
      const result = handler(request.params);
      if (!isPromiseLike(result)) return replyOk(id, result);
      inFlight += 1;
      const requestId = id;
      void Promise.resolve(result)
        .then(
          (value) => replyOk(requestId, value),
          (error: unknown) => replyError(requestId, error),
        )
        .finally(() => {
          inFlight -= 1;
        });
    } catch (error) {
      if (id === null && error instanceof WharfError && typeof error.context.id === 'number') id = error.context.id;
      replyError(id, error);
    }
  }

  function callState(params: unknown): unknown {
    const { kind, name, op, args, init } = METHOD_PARAMS['state.call'](params);
    return ctx.api.state.call!(holderId, kind, name, op, args, init);
  }

  function watch(id: number, params: unknown): { watching: string | null } {
    const { name, partition } = METHOD_PARAMS['state.watch'](params);
    if (watches.has(id)) throw new WharfError(ErrorCodes.badParams, `state.watch: id ${id} already names a watch on this connection`);
    if (watches.size >= limits.maxWatchesPerConnection) {
      throw new WharfError(ErrorCodes.tooManyWatches, `this connection already has ${watches.size} watches: unwatch one first`);
    }
    watches.set(
      id,
      ctx.api.state.watch(name, (change) => sendEvent(id, change), partition),
    );
    return { watching: name ?? null };
  }

  function unwatch(params: unknown): { unwatched: boolean } {
    const { watch: watchId } = METHOD_PARAMS['state.unwatch'](params);
    const unsubscribe = watches.get(watchId);
    if (!unsubscribe) return { unwatched: false };
    watches.delete(watchId);
    safely(unsubscribe);
    return { unwatched: true };
  }

  // Called from the store's emitter: must never throw into it.
  function sendEvent(id: number, change: StateChange): void {
    if (phase !== 'ready' || !watches.has(id)) return;
    let frame: Buffer;
    try {
      frame = encodeFrame({ v: PROTOCOL_VERSION, id, event: change }, limits.maxReplyBytes);
    } catch {
      // Too large, or not JSON: say that it changed, without the value.
      const { name, kind, op, at } = change;
      frame = encodeFrame(
        { v: PROTOCOL_VERSION, id, event: { name: String(name), kind: String(kind), op: String(op), at: Number(at), truncated: true } },
        limits.maxReplyBytes,
      );
    }
    write(frame);
  }

  function replyOk(id: number, result: unknown): void {
    if (phase !== 'ready') return;
    let frame: Buffer;
    try {
      frame = encodeFrame({ v: PROTOCOL_VERSION, id, ok: true, result: result ?? null }, limits.maxReplyBytes);
    } catch (error) {
      return replyError(id, error);
    }
    write(frame);
  }

  function replyError(id: number | null, error: unknown): void {
    if (phase !== 'ready') return;
    if (!(error instanceof WharfError)) logger.error({ err: error }, 'admin method failed');
    write(encodeFrame(errorFrame(id, toWireError(error)), limits.maxReplyBytes));
  }

  function write(frame: Buffer): void {
    if (socket.destroyed || !socket.writable) return;
    socket.write(frame);
    if (socket.writableLength > limits.maxBufferedBytes) {
      logger.warn({ buffered: socket.writableLength }, 'admin client is not reading its replies: connection dropped');
      socket.destroy();
    }
  }

  function onIdle(): void {
    if (phase !== 'ready') return;
    if (watches.size > 0 || inFlight > 0) return void idleTimer?.refresh();
    endWith({ code: ErrorCodes.idleTimeout, message: `closed after ${limits.idleTimeoutMs} ms without a request` });
  }

  /** A last error frame for the connection (id null), then close; the peer gets 1 s to hang up. */
  function endWith(error: WireError): void {
    if (socket.destroyed || !socket.writable) return;
    phase = 'closing';
    releaseWatches();
    socket.resume(); // read the peer's end (data is ignored now), so the socket closes promptly
    socket.end(encodeFrame(errorFrame(null, error), limits.maxReplyBytes));
    setTimeout(() => socket.destroy(), 1_000).unref();
  }

  function releaseWatches(): void {
    for (const unsubscribe of watches.values()) safely(unsubscribe);
    watches.clear();
  }

  return { shutdown: () => endWith({ code: ErrorCodes.shuttingDown, message: 'the supervisor is shutting down' }) };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // an unsubscribe that throws must not keep the others from running
  }
}
