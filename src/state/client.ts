import type { MessagePort } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { activeTracer, traceStateCall } from '../tracing.js';
import { createSharedState, type StateTransport } from './handles.js';
import {
  decodeError,
  FLOW_RECEIVED,
  FLOW_POSTED,
  isWelcome,
  NOT_POSTABLE,
  POSTED_WINDOW,
  POSTED_WRITES,
  STATE_PROTOCOL_VERSION,
  type ClientFrame,
  type ObjectInit,
  type OwnerMessage,
} from './messages.js';
import type { SharedState, StateKind, StateListener } from './types.js';
import { STATE_TIMING_EVERY, type ThreadMetrics } from '../thread-metrics.js';

export type * from './types.js';

/**
 * A worker's view of shared state, over the MessagePort the supervisor got from store.connect().
 * This is all a worker calls: the store's first message on the port (the welcome) carries the
 * counters' SharedArrayBuffer, so there is no separate handshake to get wrong.
 *
 * Calls are pipelined: each gets an id, and every call made in the same tick leaves in one
 * postMessage. Awaiting each call in turn costs a round trip per call; issuing many and awaiting
 * them together costs about one round trip per batch.
 *
 * Writes that answer nothing (`map.set`, `namespace.set`, `value.set`) to an object the store
 * keeps in memory are posted: they settle once their message is on the port, with no round trip,
 * and the store reads them before it serves anyone else (docs/state.md, "Posted writes").
 */
export interface StateClientOptions {
  /** Where errors thrown by watch listeners are logged (default: dropped). */
  logger?: Logger;
  /** Counts calls by operation and their latency for `/metrics`. */
  metrics?: Pick<ThreadMetrics, 'stateCall'>;
}

export interface StateClient extends SharedState {
  /** Fails pending calls with ERR_STATE_CLOSED and closes the port; the store then releases this worker's locks. */
  close(): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Posted writes settle without the event loop: a loop of awaited ones would never let it turn
 * (timers, fetches, commands would wait). After this many messages of them in a row, the next
 * settle waits for one turn of the loop.
 */
const POSTED_PER_TURN = 64;

/** Probes remembered at most (names made per key would otherwise grow it without end). */
const MAX_PROBED = 1_024;

/** Every call counted; one in STATE_TIMING_EVERY timed from the moment it is made until its answer (or failure) arrives. */
function meteredCall(call: StateTransport['call'], metrics: Pick<ThreadMetrics, 'stateCall'>): StateTransport['call'] {
  let calls = 0;
  return (kind, name, op, args, init) => {
    const operation = `${kind}.${op}`;
    if (calls++ % STATE_TIMING_EVERY !== 0) {
      metrics.stateCall(operation);
      return call(kind, name, op, args, init);
    }
    const started = performance.now();
    const done = () => metrics.stateCall(operation, (performance.now() - started) / 1_000);
    const result = call(kind, name, op, args, init);
    result.then(done, done);
    return result;
  };
}

function closedError(why: string): WharfError {
  return new WharfError('ERR_STATE_CLOSED', `The shared-state connection is closed (${why}); no more calls can be made on it.`);
}

export function createStateClient(port: MessagePort, { logger, metrics }: StateClientOptions = {}): StateClient {
  const pending = new Map<number, Pending>();
  const listeners = new Map<number, StateListener>();
  const slots = new Map<string, number>();
  const resolving = new Map<string, Promise<number>>();
  let view: BigInt64Array | undefined;
  /** From the welcome: [this worker's last message with posted writes, the last the store read], and the store's generation. */
  let flow: Int32Array | undefined;
  let generation: Int32Array | undefined;
  let sent = 0;
  /** By `kind name`: the generation a probe said this worker may post writes to it in, or NOT_POSTABLE. */
  const probed = new Map<string, number>();
  const probing = new Set<string>();
  let outbox: ClientFrame[] = [];
  /** The posted writes in the outbox, settled once it is on the port. */
  let posted = new Map<ClientFrame, Pending>();
  /** Messages of posted writes settled since the event loop last turned (POSTED_PER_TURN). */
  let sinceTurn = 0;
  let turnWatched = false;
  let flushScheduled = false;
  let nextId = 1;
  let closedBecause: string | undefined;
  // Referenced only while something is outstanding, so a worker whose work is done can exit.
  let referenced = false;

  function updateRef(): void {
    const busy = pending.size > 0 || listeners.size > 0;
    if (busy === referenced) return;
    referenced = busy;
    if (busy) port.ref();
    else port.unref();
  }

  /** Posts one message; one with posted writes is marked, and the store reads up to it before serving anyone else (serve.ts). */
  function post(frames: ClientFrame[], writes: boolean): void {
    port.postMessage(frames);
    sent++;
    if (writes) Atomics.store(flow!, FLOW_POSTED, sent);
  }

  function flush(): void {
    flushScheduled = false;
    if (closedBecause !== undefined || outbox.length === 0) return;
    const frames = outbox;
    const writes = posted;
    outbox = [];
    if (writes.size > 0) posted = new Map();
    try {
      post(frames, writes.size > 0);
      // Marked, so on the store's side before anything served after this moment.
      if (writes.size > 0) settleWrites(writes);
    } catch {
      // One frame that cannot be cloned must not sink the calls batched with it.
      for (const frame of frames) {
        const write = writes.get(frame);
        try {
          post([frame], write !== undefined);
          write?.resolve(undefined);
        } catch (error) {
          const failure = new WharfError(
            'ERR_STATE_VALUE',
            `A shared-state call could not be sent: ${(error as Error).message}. Pass JSON values and string keys.`,
            { cause: error },
          );
          if (write) write.reject(failure);
          else settle(frame[1], false, failure);
        }
      }
    }
  }

  function settleWrites(writes: Map<ClientFrame, Pending>): void {
    const resolveAll = () => {
      for (const write of writes.values()) write.resolve(undefined);
    };
    if (!turnWatched) {
      turnWatched = true;
      setImmediate(() => ((turnWatched = false), (sinceTurn = 0)));
    }
    // Scheduled after the watch above, so the loop has turned (and the count restarted) when it runs.
    if (++sinceTurn > POSTED_PER_TURN) setImmediate(resolveAll);
    else resolveAll();
  }

  function scheduleFlush(): void {
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
  }

  function enqueue(frame: ClientFrame): Promise<unknown> {
    if (closedBecause !== undefined) return Promise.reject(closedError(closedBecause));
    const promise = new Promise((resolve, reject) => pending.set(frame[1], { resolve, reject }));
    outbox.push(frame);
    scheduleFlush();
    updateRef();
    return promise;
  }

  /**
   * A write that answers nothing, posted when this worker may: the object was probed in the
   * store's current generation (so its kind cannot have changed), and the store has read all but
   * POSTED_WINDOW of this worker's messages (so a slow store holds back a fast worker: past the
   * window, the write waits for its answer like any call, and that answer comes after the store
   * caught up). Otherwise undefined, and the caller sends it as a call.
   */
  function tryPost(kind: StateKind, name: string, op: string, args: unknown[]): Promise<unknown> | undefined {
    if (POSTED_WRITES[kind]?.has(op) !== true || closedBecause !== undefined) return undefined;
    if (kind !== 'value' && typeof args[0] !== 'string') return undefined;
    const key = `${kind} ${name}`;
    const allowed = probed.get(key);
    if (allowed === NOT_POSTABLE) return undefined;
    // Before the welcome there is no generation yet: the probe goes out, and its answer comes after the welcome.
    const now = generation && Atomics.load(generation, 0);
    if (allowed === undefined || allowed !== now) {
      probe(kind, name, key);
      return undefined;
    }
    if (sent + 1 - Atomics.load(flow!, FLOW_RECEIVED) > POSTED_WINDOW) return undefined;
    const frame: ClientFrame = ['s', now, kind, name, op, args];
    const promise = new Promise((resolve, reject) => posted.set(frame, { resolve, reject }));
    outbox.push(frame);
    scheduleFlush();
    return promise;
  }

  /** Asks once per generation whether `name` takes posted writes; the call that asked goes as a call. */
  function probe(kind: StateKind, name: string, key: string): void {
    if (probing.has(key)) return;
    probing.add(key);
    enqueue(['q', nextId++, kind, name]).then(
      (answer) => {
        probing.delete(key);
        if (probed.size >= MAX_PROBED) probed.clear();
        probed.set(key, answer as number);
      },
      // Its call, sent right after it, reports whatever was wrong (a name of another kind).
      () => probing.delete(key),
    );
  }

  function settle(id: number, ok: boolean, value: unknown): void {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    if (ok) entry.resolve(value);
    else entry.reject(value);
  }

  function shutDown(why: string): void {
    if (closedBecause !== undefined) return;
    closedBecause = why;
    const error = closedError(why);
    for (const entry of pending.values()) entry.reject(error);
    for (const write of posted.values()) write.reject(error);
    pending.clear();
    posted.clear();
    listeners.clear();
    port.close();
  }

  port.on('message', (message: OwnerMessage) => {
    if (isWelcome(message)) {
      if (message.version !== STATE_PROTOCOL_VERSION) {
        shutDown(
          `the store speaks state protocol ${message.version} and this worker ${STATE_PROTOCOL_VERSION}; rebuild with npm run build`,
        );
        return;
      }
      view = new BigInt64Array(message.counters);
      flow = new Int32Array(message.flow);
      generation = new Int32Array(message.generation);
      return;
    }
    for (const frame of message) {
      if (frame[0] === 'r') settle(frame[1], true, frame[2]);
      else if (frame[0] === 'e') settle(frame[1], false, decodeError(frame[2]));
      else {
        const listener = listeners.get(frame[1]);
        try {
          listener?.(frame[2]);
        } catch (error) {
          logger?.warn({ component: 'state', err: error, name: frame[2].name }, 'a state watch listener threw');
        }
      }
    }
    updateRef();
  });
  port.on('close', () => shutDown('the supervisor released this worker'));
  port.unref();

  const send = (kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit) =>
    tryPost(kind, name, op, args) ?? enqueue(['c', nextId++, kind, name, op, args, init]);
  const call = (kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit) => {
    const tracer = activeTracer();
    if (!tracer) return send(kind, name, op, args, init);
    return traceStateCall(tracer, kind, name, op, () => send(kind, name, op, args, init));
  };

  const transport: StateTransport = {
    call: metrics ? meteredCall(call, metrics) : call,
    async watch(name, listener) {
      const id = nextId++;
      // Registered before the request leaves: changes can follow the reply in the same batch.
      listeners.set(id, listener);
      try {
        await enqueue(['w', id, name ?? null]);
      } catch (error) {
        listeners.delete(id);
        throw error;
      }
      return () => {
        if (!listeners.delete(id) || closedBecause !== undefined) return;
        enqueue(['u', nextId++, id]).catch(() => undefined);
      };
    },
    counters: {
      cached: (name) => slots.get(name),
      resolve(name) {
        let slot = resolving.get(name);
        if (!slot) {
          slot = (call('counter', name, 'slot', []) as Promise<number>).then(
            (resolved) => (slots.set(name, resolved), resolving.delete(name), resolved),
            (error) => {
              resolving.delete(name);
              throw error;
            },
          );
          resolving.set(name, slot);
        }
        return slot;
      },
      // The welcome precedes every reply on the port, so a resolved slot always finds the view set.
      view: () => view!,
    },
  };

  return { ...createSharedState(transport), close: () => shutDown('closed by this worker') };
}
