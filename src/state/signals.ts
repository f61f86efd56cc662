import { TimeoutError, WharfError } from '../errors.js';
import { durationArg, jsonArg, positiveIntArg } from './args.js';
import type { ObjectInit } from './messages.js';
import { describeObject, loadError, opTable, PENDING, type ObjectEnv, type StateObject } from './object.js';
import { createWaitLine, formatMs, holderGone } from './waiters.js';

/** Events and bounded queues: the kinds a caller waits on, with deadlines kept by the owner. */

export function createEvent(env: ObjectEnv): StateObject {
  const what = describeObject('event', env.name);
  const waiters = createWaitLine();
  let isSet = false;

  function set(value: boolean): void {
    if (isSet === value) return;
    isSet = value;
    env.emit(value ? 'set' : 'clear', undefined, value);
    if (value) for (let waiter = waiters.shift(); waiter; waiter = waiters.shift()) waiter.call.resolve(undefined);
  }

  return {
    kind: 'event',
    ops: opTable({
      set: () => set(true),
      clear: () => set(false),
      isSet: () => isSet,
      wait: ([timeoutArg], call) => {
        if (isSet) return undefined;
        const timeoutMs = durationArg(timeoutArg, `${what} timeoutMs`);
        const message = () => `${what} was not set within ${formatMs(timeoutMs ?? 0)}.`;
        if (timeoutMs === 0) throw new TimeoutError(message(), { context: { name: env.name, timeoutMs } });
        waiters.add(call, undefined, timeoutMs, message);
        return PENDING;
      },
    }),
    size: () => (isSet ? 1 : 0),
    snapshot: () => isSet,
    load: (value) => {
      if (typeof value !== 'boolean') throw loadError('event', env.name, 'true or false');
      set(value);
    },
    releaseHolder: (holderId) => waiters.dropHolder(holderId, holderGone(holderId)),
    dispose: (error) => waiters.rejectAll(error),
  };
}

export const DEFAULT_QUEUE_CAPACITY = 1_000;

/**
 * A bounded FIFO queue. An item handed to a waiting getter whose worker dies before the reply
 * lands is lost: queues move items at most once to a consumer. Use a list or Kafka where every
 * item must survive a consumer's crash.
 */
export function createQueue(env: ObjectEnv, init: ObjectInit | undefined): StateObject {
  const what = describeObject('queue', env.name);
  const capacity = init?.capacity === undefined ? DEFAULT_QUEUE_CAPACITY : positiveIntArg(init.capacity, `${what} capacity`);
  let items: unknown[] = [];
  const getters = createWaitLine();
  const putters = createWaitLine<{ value: unknown }>();

  function take(): unknown {
    const value = items.shift();
    // Room was made: the longest-waiting putter's item goes in.
    const putter = putters.shift();
    if (putter) {
      items.push(putter.data.value);
      env.emit('put', undefined, putter.data.value);
      putter.call.resolve(undefined);
    }
    env.emit('get', undefined, value);
    return value;
  }

  function loadItems(value: unknown): unknown[] {
    const list = Array.isArray(value) ? value : (value as { items?: unknown } | null)?.items;
    if (!Array.isArray(list)) throw loadError('queue', env.name, 'an array of items or {capacity, items}');
    if (list.length > capacity) throw new WharfError('ERR_STATE_CAPACITY', `${what} holds at most ${capacity} items; got ${list.length}.`);
    return jsonArg<unknown[]>(list, `${what} items`).slice();
  }

  return {
    kind: 'queue',
    ops: opTable({
      put: ([value, timeoutArg], call) => {
        jsonArg(value, `${what} .put value`);
        const timeoutMs = durationArg(timeoutArg, `${what} timeoutMs`);
        const getter = getters.shift();
        if (getter) {
          env.emit('put', undefined, value);
          env.emit('get', undefined, value);
          getter.call.resolve(value);
          return undefined;
        }
        if (items.length < capacity) {
          items.push(value);
          env.emit('put', undefined, value);
          return undefined;
        }
        const message = () =>
          `${what} stayed full (${capacity} items) for ${formatMs(timeoutMs ?? 0)}; nothing was put. Consume faster, or raise its capacity.`;
        if (timeoutMs === 0) throw new TimeoutError(message(), { context: { name: env.name, capacity, timeoutMs } });
        putters.add(call, { value }, timeoutMs, message);
        return PENDING;
      },
      get: ([timeoutArg], call) => {
        if (items.length > 0) return take();
        const timeoutMs = durationArg(timeoutArg, `${what} timeoutMs`);
        const message = () => `${what} stayed empty for ${formatMs(timeoutMs ?? 0)}.`;
        if (timeoutMs === 0) throw new TimeoutError(message(), { context: { name: env.name, timeoutMs } });
        getters.add(call, undefined, timeoutMs, message);
        return PENDING;
      },
      size: () => items.length,
      capacity: () => capacity,
    }),
    size: () => items.length,
    snapshot: () => ({ capacity, items: items.slice() }),
    load: (value) => {
      items = loadItems(value);
      env.emit('load', undefined, items.slice());
      // Loaded items may satisfy callers already waiting.
      while (items.length > 0 && getters.length > 0) getters.shift()!.call.resolve(take());
    },
    checkInit: (asked) => {
      if (asked?.capacity !== undefined && asked.capacity !== capacity) {
        throw new WharfError(
          'ERR_STATE_CONFIG',
          `${what} exists with capacity ${capacity}; asked for ${asked.capacity}. Use the same capacity everywhere, or another name.`,
          {
            context: { name: env.name, capacity, asked: asked.capacity },
          },
        );
      }
    },
    releaseHolder: (holderId) => {
      getters.dropHolder(holderId, holderGone(holderId));
      putters.dropHolder(holderId, holderGone(holderId));
    },
    dispose: (error) => {
      getters.rejectAll(error);
      putters.rejectAll(error);
    },
  };
}
