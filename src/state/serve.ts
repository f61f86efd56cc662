import type { MessagePort } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  type ObjectInit,
  decodeClientFrame,
  encodeError,
  frameId,
  STATE_PROTOCOL_VERSION,
  type ClientFrame,
  type OwnerFrame,
  type ReplyFrame,
  type WelcomeMessage,
} from './messages.js';
import { checkPersistedCall } from './changelog-records.js';
import { PENDING, type CallContext } from './object.js';
import type { Persister } from './persister.js';
import type { Registry } from './registry.js';
import type { StateKind, StateListener } from './types.js';

/** Where calls on the objects a deployment shares are served: by their owner, here or elsewhere. */
export interface SharedRoute {
  covers(name: string, kind: StateKind): boolean;
  call(holderId: string, kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit): Promise<unknown>;
  /** That holder (a worker of this supervisor) ended: what it held on shared objects is freed. */
  release(holderId: string): void;
  /** Changes of shared objects (of `name`, or all when undefined), wherever they are owned. */
  watch(name: string | undefined, listener: StateListener): () => void;
}

/**
 * The owner's end of one worker's state port. Replies are collected in an outbox and posted as one
 * message per turn of the event loop: answering a batch of a thousand calls costs one postMessage.
 */
export interface Connection {
  readonly holderId: string;
  /** Stops serving and closes the port (the worker sees its pending calls fail). */
  close(): void;
}

export interface ConnectionOptions {
  holderId: string;
  port: MessagePort;
  counters: SharedArrayBuffer;
  registry: Registry;
  watch(name: string | undefined, listener: StateListener): () => void;
  /** The port closed from the other side (the worker ended or closed its client). */
  onClosed(connection: Connection): void;
  /** When some objects are persisted: replies about them wait for the changelog's acknowledgement. */
  durability?: Pick<Persister, 'covers' | 'barrier'>;
  /** Objects a deployment shares: their calls go there (store.ts, src/cluster/). */
  shared?: SharedRoute;
  logger?: Logger;
}

export function serveConnection({
  holderId,
  port,
  counters,
  registry,
  watch,
  onClosed,
  durability,
  shared,
  logger,
}: ConnectionOptions): Connection {
  let outbox: OwnerFrame[] = [];
  /** Replies about persisted objects, held until what they reflect is acknowledged by Kafka. */
  let held: ReplyFrame[] = [];
  let flushScheduled = false;
  let open = true;
  const subscriptions = new Map<number, () => void>();

  function post(frames: OwnerFrame[]): void {
    if (!open || frames.length === 0) return;
    try {
      port.postMessage(frames);
    } catch (error) {
      // Replies are JSON the store holds, so this is a bug; say which holder lost its replies.
      logger?.error({ component: 'state', holderId, err: error }, 'could not post state replies');
    }
  }

  function flush(): void {
    flushScheduled = false;
    if (!open) return;
    if (held.length > 0) {
      // Taken after the whole batch of calls ran: it covers every change those calls made (and
      // any value they read). Barriers settle in order, so held replies still leave in order.
      const barrier = durability?.barrier();
      const frames = held;
      held = [];
      if (barrier === undefined) outbox.push(...frames);
      else {
        barrier.then(
          () => post(frames),
          (error: WharfError) => post(frames.map(([, id]): OwnerFrame => ['e', id, encodeError(error)])),
        );
      }
    }
    const frames = outbox;
    outbox = [];
    post(frames);
  }

  function schedule(): void {
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
  }

  function send(frame: OwnerFrame): void {
    if (!open) return;
    outbox.push(frame);
    schedule();
  }

  function hold(frame: ReplyFrame): void {
    if (!open) return;
    held.push(frame);
    schedule();
  }

  function fail(id: number, error: unknown): void {
    if (!(error instanceof WharfError)) {
      logger?.error({ component: 'state', holderId, err: error }, 'a state operation failed unexpectedly');
      error = new WharfError(
        'ERR_STATE_INTERNAL',
        `The state store failed on this call: ${String(error)}. This is a bug in wharf; please report it.`,
        { cause: error },
      );
    }
    send(['e', id, encodeError(error as WharfError)]);
  }

  function handle(frame: ClientFrame): void {
    const id = frame[1];
    if (frame[0] === 'c') {
      const [, , kind, name, op, args, init] = frame;
      if (shared?.covers(name, kind)) {
        shared.call(holderId, kind, name, op, args, init ?? undefined).then(
          (value) => send(['r', id, value]),
          (error: unknown) => fail(id, error),
        );
        return;
      }
      let settled = false;
      // Reads wait too: a value read before it is durable could be acted on, then lost with the supervisor.
      const durable = durability?.covers(name, kind) === true;
      if (durable) checkPersistedCall(kind, name, op, args);
      const call: CallContext = {
        holderId,
        resolve: (value) => {
          if (settled) return;
          settled = true;
          if (durable) hold(['r', id, value]);
          else send(['r', id, value]);
        },
        reject: (error) => {
          if (settled) return;
          settled = true;
          fail(id, error);
        },
      };
      const result = registry.execute(call, kind, name, op, args, init);
      if (result !== PENDING) call.resolve(result);
    } else if (frame[0] === 'w') {
      const subscription = id;
      subscriptions.set(
        subscription,
        watch(frame[2] ?? undefined, (change) => send(['x', subscription, change])),
      );
      send(['r', id, subscription]);
    } else {
      const unsubscribe = subscriptions.get(frame[2]);
      subscriptions.delete(frame[2]);
      unsubscribe?.();
      send(['r', id, unsubscribe !== undefined]);
    }
  }

  port.on('message', (message: unknown) => {
    if (!Array.isArray(message)) {
      logger?.warn({ component: 'state', holderId }, 'ignored a state message that is not a batch of frames');
      return;
    }
    for (const raw of message) {
      try {
        handle(decodeClientFrame(raw));
      } catch (error) {
        const id = frameId(raw);
        if (id !== undefined) fail(id, error);
        else logger?.warn({ component: 'state', holderId, err: error }, 'dropped a malformed state frame');
      }
    }
  });

  const connection: Connection = {
    holderId,
    close() {
      if (!open) return;
      flush();
      open = false;
      for (const unsubscribe of subscriptions.values()) unsubscribe();
      subscriptions.clear();
      port.close();
    },
  };

  port.on('close', () => {
    if (!open) return;
    open = false;
    for (const unsubscribe of subscriptions.values()) unsubscribe();
    subscriptions.clear();
    onClosed(connection);
  });

  // The supervisor's other handles decide when it exits, not an idle worker connection.
  port.unref();
  const welcome: WelcomeMessage = { t: 'welcome', version: STATE_PROTOCOL_VERSION, holderId, counters };
  port.postMessage(welcome);
  return connection;
}
