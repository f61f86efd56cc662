import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  type ObjectInit,
  decodeClientFrame,
  encodeError,
  FLOW_RECEIVED,
  FLOW_POSTED,
  frameId,
  NOT_POSTABLE,
  POSTED_WRITES,
  STATE_PROTOCOL_VERSION,
  type ClientFrame,
  type PostFrame,
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
  /**
   * Handles at once this worker's messages up to the last that carried posted writes. The store
   * calls it before serving anyone else, so a write the worker already saw settled is never
   * overtaken by a later call from another worker or from the supervisor.
   */
  drain(): void;
  /** Handles what the worker posted so far, stops serving and closes the port (the worker sees its pending calls fail). */
  close(): void;
}

export interface ConnectionOptions {
  holderId: string;
  port: MessagePort;
  counters: SharedArrayBuffer;
  /** Int32 [generation] (registry.ts): a probe answers it; a posted write carries the one its probe was good for. */
  generation: Int32Array;
  registry: Registry;
  /**
   * Runs the handling of one message of this worker: the store reads every other worker's posted
   * writes first, and serves nothing else until it is done (store.ts).
   */
  serving?(connection: Connection, handle: () => void): void;
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
  generation,
  registry,
  serving,
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
  /** [the worker's last message with posted writes, the last message read here] (messages.ts). */
  const flowBuffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const flow = new Int32Array(flowBuffer);
  let received = 0;

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

  /**
   * A posted write that failed. Nobody waits for it: the worker was told it was done when it left.
   * Only one race can get here: the object was deleted or restored (the generation moved) after
   * the worker's probe, and its name now is another kind. The write then counts as made just
   * before that delete, which removed it: the outcome a write made a moment earlier would have had.
   */
  function postedFailed([, checked, kind, name, op]: PostFrame, error: unknown): void {
    const code = error instanceof WharfError ? error.code : undefined;
    if ((code === 'ERR_STATE_KIND' && checked !== Atomics.load(generation, 0)) || code === 'ERR_STATE_CLOSED') {
      logger?.debug({ component: 'state', holderId, name, kind, op, code }, 'a posted state write came after its object was replaced');
      return;
    }
    logger?.error({ component: 'state', holderId, name, kind, op, err: error }, 'a posted state write failed; nobody was waiting for it');
  }

  /** May this worker post writes to `name`? Only to an object served here from memory, whose kind is now fixed. */
  function probe(kind: StateKind, name: string): number {
    if (POSTED_WRITES[kind] === undefined || shared?.covers(name, kind) || durability?.covers(name, kind)) return NOT_POSTABLE;
    // Created if need be: from here only a delete or a restore, which move the generation, can change its kind.
    registry.ensure(kind, name);
    return Atomics.load(generation, 0);
  }

  /** One operation; `id` undefined for a posted write, which gets no answer. */
  function run(
    id: number | undefined,
    kind: StateKind,
    name: string,
    op: string,
    args: unknown[],
    init: ObjectInit | undefined,
    posted?: PostFrame,
  ): void {
    const answer = (frame: OwnerFrame) => id !== undefined && send(frame);
    const failed = (error: unknown) => (posted ? postedFailed(posted, error) : fail(id!, error));
    if (shared?.covers(name, kind)) {
      shared.call(holderId, kind, name, op, args, init).then((value) => answer(['r', id!, value]), failed);
      return;
    }
    let settled = false;
    // Reads wait too: a value read before it is durable could be acted on, then lost with the supervisor.
    const durable = durability?.covers(name, kind) === true;
    if (durable) checkPersistedCall(kind, name, op, args);
    const call: CallContext = {
      holderId,
      resolve: (value) => {
        if (settled || id === undefined) return;
        settled = true;
        if (durable) hold(['r', id, value]);
        else send(['r', id, value]);
      },
      reject: (error) => {
        if (settled) return;
        settled = true;
        failed(error);
      },
    };
    const result = registry.execute(call, kind, name, op, args, init);
    if (result !== PENDING) call.resolve(result);
  }

  function handle(frame: ClientFrame): void {
    switch (frame[0]) {
      case 'c':
        return run(frame[1], frame[2], frame[3], frame[4], frame[5], frame[6] ?? undefined);
      case 's':
        return run(undefined, frame[2], frame[3], frame[4], frame[5], undefined, frame);
      case 'q':
        return send(['r', frame[1], probe(frame[2], frame[3])]);
      case 'w': {
        const subscription = frame[1];
        subscriptions.set(
          subscription,
          watch(frame[2] ?? undefined, (change) => send(['x', subscription, change])),
        );
        return send(['r', subscription, subscription]);
      }
      case 'u': {
        const unsubscribe = subscriptions.get(frame[2]);
        subscriptions.delete(frame[2]);
        unsubscribe?.();
        return send(['r', frame[1], unsubscribe !== undefined]);
      }
    }
  }

  function handleMessage(message: unknown): void {
    if (!Array.isArray(message)) {
      logger?.warn({ component: 'state', holderId }, 'ignored a state message that is not a batch of frames');
      return;
    }
    for (const raw of message) {
      let frame: ClientFrame | undefined;
      try {
        frame = decodeClientFrame(raw);
        handle(frame);
      } catch (error) {
        const id = frameId(raw);
        if (frame?.[0] === 's') postedFailed(frame, error);
        else if (id !== undefined) fail(id, error);
        else logger?.warn({ component: 'state', holderId, err: error }, 'dropped a malformed state frame');
      }
    }
  }

  function onMessage(message: unknown): void {
    Atomics.store(flow, FLOW_RECEIVED, ++received);
    if (serving) serving(connection, () => handleMessage(message));
    else handleMessage(message);
  }

  port.on('message', onMessage);

  function drain(): void {
    // Only as far as the worker has counted: a write settles in the worker after it is counted, so
    // one not counted yet is not done yet, and may come after whatever the store is about to serve.
    while (open && Atomics.load(flow, FLOW_POSTED) > received) {
      const next = receiveMessageOnPort(port);
      if (next === undefined) return;
      onMessage(next.message);
    }
  }

  const connection: Connection = {
    holderId,
    drain,
    close() {
      if (!open) return;
      drain();
      flush();
      open = false;
      for (const unsubscribe of subscriptions.values()) unsubscribe();
      subscriptions.clear();
      port.close();
    },
  };

  port.on('close', () => {
    if (!open) return;
    drain();
    open = false;
    for (const unsubscribe of subscriptions.values()) unsubscribe();
    subscriptions.clear();
    onClosed(connection);
  });

  // The supervisor's other handles decide when it exits, not an idle worker connection.
  port.unref();
  const welcome: WelcomeMessage = {
    t: 'welcome',
    version: STATE_PROTOCOL_VERSION,
    holderId,
    counters,
    flow: flowBuffer,
    generation: generation.buffer as SharedArrayBuffer,
  };
  port.postMessage(welcome);
  return connection;
}
