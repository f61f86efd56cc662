import { WharfError } from '../errors.js';
import { assertJson, copyJson } from './json.js';
import { NO_SLOT, type ObjectInit } from './messages.js';
import type {
  LeaseHandle,
  LeaseOptions,
  MapBatchOp,
  QueueOptions,
  SharedCounter,
  SharedLock,
  SharedSemaphore,
  SharedState,
  StateKind,
  StateListener,
  UpdateOptions,
} from './types.js';

/**
 * The typed API, written once over a transport: the worker's message client and the owner's
 * in-thread `local` both hand their transport here, so the two cannot drift apart.
 */
export interface StateTransport {
  call(kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit): Promise<unknown>;
  watch(name: string | undefined, listener: StateListener): Promise<() => void>;
  counters: CounterAccess;
}

/** How counter handles reach shared memory without a message. */
export interface CounterAccess {
  /** The slot of a counter this side has already asked about. */
  cached(name: string): number | undefined;
  /** Asks the owner once (it checks the kind and allocates the slot), then caches. */
  resolve(name: string): Promise<number>;
  view(): BigInt64Array;
  /** Called after every add made here (the owner announces its own adds to watchers at once). */
  added?(name: string, slot: number, total: number): void;
}

const DEFAULT_MAX_ATTEMPTS = 1_000;

function contention(kind: StateKind, name: string, attempts: number): WharfError {
  return new WharfError(
    'ERR_STATE_CONTENTION',
    `${kind} ${JSON.stringify(name)}: update lost the compare-and-set race ${attempts} times. Retry later, raise maxAttempts, or use a lock.`,
    { retriable: true, context: { name, kind, attempts } },
  );
}

function leaseArgs(options: LeaseOptions = {}): unknown[] {
  return [options.leaseMs, options.timeoutMs];
}

/** Counter handles kept per name at most (names made per key would otherwise grow it without end). */
const MAX_CACHED_COUNTERS = 1_024;

export function createSharedState(transport: StateTransport): SharedState {
  const { call, counters } = transport;

  /** Read-modify-write by compare-and-set: one round trip per attempt (a lost race returns the current value). */
  async function casLoop<V>(
    kind: StateKind,
    name: string,
    keyArgs: unknown[],
    current: V | undefined,
    fn: (current: V | undefined) => V | undefined,
    maxAttempts: number,
  ): Promise<V | undefined> {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      // fn gets its own copy: if it mutates and returns it, `expected` must still be what was read.
      const next = fn(copyJson(current));
      if (next !== undefined) assertJson(next, `${kind} ${JSON.stringify(name)} update result`);
      const [ok, now] = (await call(kind, name, 'compareAndSet', [...keyArgs, current, next, true])) as [boolean, V | undefined];
      if (ok) return next;
      current = now;
    }
    throw contention(kind, name, maxAttempts);
  }

  function leaseHandle(
    kind: 'lock' | 'semaphore',
    name: string,
    grant: { token: number; expiresAt: number | null },
    init?: ObjectInit,
  ): LeaseHandle {
    let expiresAt = grant.expiresAt;
    return {
      name,
      token: grant.token,
      get expiresAt() {
        return expiresAt;
      },
      release: () => call(kind, name, 'release', [grant.token], init) as Promise<boolean>,
      extend: async (leaseMs) => {
        const result = (await call(kind, name, 'extend', [grant.token, leaseMs], init)) as number | null | false;
        if (result === false) return false;
        expiresAt = result;
        return true;
      },
    };
  }

  async function withLease<T>(acquire: () => Promise<LeaseHandle>, fn: () => T | Promise<T>): Promise<T> {
    const handle = await acquire();
    try {
      return await fn();
    } finally {
      await handle.release();
    }
  }

  /** Checked here, before the call is batched: a value that cannot be sent must not sink its batch. Methods that check are async, so a bad value rejects rather than throws. */
  function valueArg(value: unknown, where: string): unknown {
    assertJson(value, where);
    return value;
  }

  /** A counter's handle: an add is one Atomics.add on shared memory, unless the counter is persisted. */
  function makeCounter(name: string): SharedCounter {
    function addAt(slot: number, n: number): number {
      const total = Number(Atomics.add(counters.view(), slot, BigInt(n))) + n;
      counters.added?.(name, slot, total);
      return total;
    }
    return {
      add(n = 1) {
        if (!Number.isSafeInteger(n)) {
          return Promise.reject(
            new WharfError('ERR_STATE_ARGUMENT', `counter ${JSON.stringify(name)} .add n must be a safe integer; got ${String(n)}.`),
          );
        }
        const slot = counters.cached(name);
        // The hot path: one Atomics.add on shared memory, no message.
        if (slot !== undefined && slot !== NO_SLOT) return Promise.resolve(addAt(slot, n));
        // A persisted counter: the store applies the add and answers once the changelog has it.
        if (slot === NO_SLOT) return call('counter', name, 'add', [n]) as Promise<number>;
        return counters
          .resolve(name)
          .then((resolved) => (resolved === NO_SLOT ? (call('counter', name, 'add', [n]) as Promise<number>) : addAt(resolved, n)));
      },
      async get() {
        const slot = counters.cached(name) ?? (await counters.resolve(name));
        if (slot === NO_SLOT) return call('counter', name, 'get', []) as Promise<number>;
        return Number(Atomics.load(counters.view(), slot));
      },
      set: (value) => call('counter', name, 'set', [value]) as Promise<void>,
    };
  }

  const counterHandles = new Map<string, SharedCounter>();

  const state: SharedState = {
    map(name) {
      const op = (op: string, args: unknown[]) => call('map', name, op, args);
      const where = (what: string) => `map ${JSON.stringify(name)} ${what}`;
      return {
        get: (key) => op('get', [key]) as never,
        set: async (key, value) => op('set', [key, valueArg(value, where(`key ${JSON.stringify(key)} value`))]) as Promise<void>,
        setIfAbsent: async (key, value) =>
          op('setIfAbsent', [key, valueArg(value, where(`key ${JSON.stringify(key)} value`))]) as Promise<boolean>,
        compareAndSet: async (key, expected, next) => {
          if (expected !== undefined) assertJson(expected, where('compareAndSet expected'));
          if (next !== undefined) assertJson(next, where('compareAndSet next'));
          return op('compareAndSet', [key, expected, next]) as Promise<boolean>;
        },
        delete: (key) => op('delete', [key]) as Promise<boolean>,
        has: (key) => op('has', [key]) as Promise<boolean>,
        keys: () => op('keys', []) as Promise<string[]>,
        entries: () => op('entries', []) as never,
        size: () => op('size', []) as Promise<number>,
        clear: () => op('clear', []) as Promise<void>,
        update: async (key, fn, { maxAttempts = DEFAULT_MAX_ATTEMPTS }: UpdateOptions = {}) =>
          casLoop('map', name, [key], (await op('get', [key])) as never, fn, maxAttempts),
        batch: async (ops: MapBatchOp<unknown>[]) => {
          ops.forEach((entry, i) => {
            if ('value' in entry && entry.value !== undefined) assertJson(entry.value, where(`batch entry ${i} value`));
            if ('expected' in entry && entry.expected !== undefined) assertJson(entry.expected, where(`batch entry ${i} expected`));
          });
          return op('batch', [ops]) as Promise<unknown[]>;
        },
      };
    },

    list(name) {
      const op = (op: string, args: unknown[]) => call('list', name, op, args);
      return {
        append: async (...values) => {
          values.forEach((value, i) => assertJson(value, `list ${JSON.stringify(name)} append value ${i}`));
          return op('append', values) as Promise<number>;
        },
        get: (index) => op('get', [index]) as never,
        slice: (start, end) => op('slice', [start, end]) as never,
        length: () => op('length', []) as Promise<number>,
        clear: () => op('clear', []) as Promise<void>,
      };
    },

    value(name) {
      const op = (op: string, args: unknown[]) => call('value', name, op, args);
      const where = `value ${JSON.stringify(name)}`;
      return {
        get: () => op('get', []) as never,
        set: async (value) => op('set', [valueArg(value, where)]) as Promise<void>,
        compareAndSet: async (expected, next) => {
          if (expected !== undefined) assertJson(expected, `${where} compareAndSet expected`);
          return op('compareAndSet', [expected, valueArg(next, `${where} compareAndSet next`)]) as Promise<boolean>;
        },
        update: async (fn, { maxAttempts = DEFAULT_MAX_ATTEMPTS }: UpdateOptions = {}) =>
          casLoop('value', name, [], (await op('get', [])) as never, fn as never, maxAttempts) as never,
      };
    },

    counter(name): SharedCounter {
      // Handlers write `ctx.state.counter(name).add(1)` for every message: the handle, stateless, is made once per name.
      let handle = counterHandles.get(name);
      if (!handle) {
        if (counterHandles.size >= MAX_CACHED_COUNTERS) counterHandles.clear();
        counterHandles.set(name, (handle = makeCounter(name)));
      }
      return handle;
    },

    lock(name): SharedLock {
      const acquire = async (options?: LeaseOptions) =>
        leaseHandle('lock', name, (await call('lock', name, 'acquire', leaseArgs(options))) as never);
      return {
        acquire,
        withLock: (fn, options) => withLease(() => acquire(options), fn),
        info: () => call('lock', name, 'info', []) as never,
      };
    },

    semaphore(name, permits): SharedSemaphore {
      const init = { permits };
      const acquire = async (options?: LeaseOptions) =>
        leaseHandle('semaphore', name, (await call('semaphore', name, 'acquire', leaseArgs(options), init)) as never, init);
      return {
        acquire,
        withPermit: (fn, options) => withLease(() => acquire(options), fn),
        available: () => call('semaphore', name, 'available', [], init) as Promise<number>,
      };
    },

    event(name) {
      const op = (op: string, args: unknown[]) => call('event', name, op, args);
      return {
        set: () => op('set', []) as Promise<void>,
        clear: () => op('clear', []) as Promise<void>,
        isSet: () => op('isSet', []) as Promise<boolean>,
        wait: (options) => op('wait', [options?.timeoutMs]) as Promise<void>,
      };
    },

    queue(name, options: QueueOptions = {}) {
      const init = options.capacity === undefined ? undefined : { capacity: options.capacity };
      const op = (op: string, args: unknown[]) => call('queue', name, op, args, init);
      return {
        put: async (value, putOptions) =>
          op('put', [valueArg(value, `queue ${JSON.stringify(name)} put value`), putOptions?.timeoutMs]) as Promise<void>,
        get: (getOptions) => op('get', [getOptions?.timeoutMs]) as never,
        size: () => op('size', []) as Promise<number>,
      };
    },

    namespace(name) {
      const op = (op: string, args: unknown[]) => call('namespace', name, op, args);
      const where = `namespace ${JSON.stringify(name)}`;
      return {
        get: (field) => op('get', [field]) as never,
        set: async (field, value) => op('set', [field, valueArg(value, `${where} field ${JSON.stringify(field)}`)]) as Promise<void>,
        delete: (field) => op('delete', [field]) as Promise<boolean>,
        assign: async (fields) => op('assign', [valueArg(fields, `${where} assign`)]) as Promise<void>,
        toObject: () => op('toObject', []) as never,
      };
    },

    watch: (name, listener) => transport.watch(name, listener),
  };
  return state;
}
