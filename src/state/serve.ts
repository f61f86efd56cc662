import type { MessagePort } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  decodeClientFrame, encodeError, frameId, STATE_PROTOCOL_VERSION, type ClientFrame, type OwnerFrame, type WelcomeMessage,
} from './messages.js';
import { PENDING, type CallContext } from './object.js';
import type { Registry } from './registry.js';
import type { StateListener } from './types.js';

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
  logger?: Logger;
}

export function serveConnection({ holderId, port, counters, registry, watch, onClosed, logger }: ConnectionOptions): Connection {
  let outbox: OwnerFrame[] = [];
  let flushScheduled = false;
  let open = true;
  const subscriptions = new Map<number, () => void>();

  function flush(): void {
    flushScheduled = false;
    if (!open || outbox.length === 0) return;
    const frames = outbox;
    outbox = [];
    try {
      port.postMessage(frames);
    } catch (error) {
      // Replies are JSON the store holds, so this is a bug; say which holder lost its replies.
      logger?.error({ component: 'state', holderId, err: error }, 'could not post state replies');
    }
  }

  function send(frame: OwnerFrame): void {
    if (!open) return;
    outbox.push(frame);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
  }

  function fail(id: number, error: unknown): void {
    if (!(error instanceof WharfError)) {
      logger?.error({ component: 'state', holderId, err: error }, 'a state operation failed unexpectedly');
      error = new WharfError('ERR_STATE_INTERNAL', `The state store failed on this call: ${String(error)}. This is a bug in wharf; please report it.`, { cause: error });
    }
    send(['e', id, encodeError(error as WharfError)]);
  }

  function handle(frame: ClientFrame): void {
    const id = frame[1];
    if (frame[0] === 'c') {
      const [, , kind, name, op, args, init] = frame;
      let settled = false;
      const call: CallContext = {
        holderId,
        resolve: (value) => {
          if (!settled) (settled = true), send(['r', id, value]);
        },
        reject: (error) => {
          if (!settled) (settled = true), fail(id, error);
        },
      };
      const result = registry.execute(call, kind, name, op, args, init);
      if (result !== PENDING) call.resolve(result);
    } else if (frame[0] === 'w') {
      const subscription = id;
      subscriptions.set(subscription, watch(frame[2] ?? undefined, (change) => send(['x', subscription, change])));
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
