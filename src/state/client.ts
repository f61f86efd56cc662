import type { MessagePort } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import { activeTracer, traceStateCall } from '../tracing.js';
import { createSharedState, type StateTransport } from './handles.js';
import { decodeError, isWelcome, STATE_PROTOCOL_VERSION, type ClientFrame, type ObjectInit, type OwnerMessage } from './messages.js';
import type { SharedState, StateListener } from './types.js';
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
  let outbox: ClientFrame[] = [];
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

  function flush(): void {
    flushScheduled = false;
    if (closedBecause !== undefined || outbox.length === 0) return;
    const frames = outbox;
    outbox = [];
    try {
      port.postMessage(frames);
    } catch {
      // One frame that cannot be cloned must not sink the calls batched with it.
      for (const frame of frames) {
        try {
          port.postMessage([frame]);
        } catch (error) {
          settle(
            frame[1],
            false,
            new WharfError(
              'ERR_STATE_VALUE',
              `A shared-state call could not be sent: ${(error as Error).message}. Pass JSON values and string keys.`,
              { cause: error },
            ),
          );
        }
      }
    }
  }

  function enqueue(frame: ClientFrame): Promise<unknown> {
    if (closedBecause !== undefined) return Promise.reject(closedError(closedBecause));
    const promise = new Promise((resolve, reject) => pending.set(frame[1], { resolve, reject }));
    outbox.push(frame);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
    updateRef();
    return promise;
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
    pending.clear();
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

  const call = (kind: Parameters<StateTransport['call']>[0], name: string, op: string, args: unknown[], init?: ObjectInit) => {
    const tracer = activeTracer();
    if (!tracer) return enqueue(['c', nextId++, kind, name, op, args, init]);
    return traceStateCall(tracer, kind, name, op, () => enqueue(['c', nextId++, kind, name, op, args, init]));
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
