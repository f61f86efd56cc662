import { WharfError } from '../errors.js';
import { intArg } from './args.js';
import { NO_SLOT } from './messages.js';
import { describeObject, loadError, opTable, type ObjectEnv, type StateObject } from './object.js';

/**
 * Counters live in one growable SharedArrayBuffer of BigInt64 slots that every worker maps.
 * `add` is an Atomics.add on the slot: no message, no owner involvement. The owner alone hands out
 * slots, by name, so every worker that asks for "requests" gets the same slot.
 *
 * A slot stays with its name for the life of the store, even after the counter is deleted, so a
 * worker still holding the old slot can never write into another counter.
 */

export interface CounterSlotsOptions {
  /** Slots allocated at start (default 1,024: 8 KiB). */
  initial?: number;
  /** Most counters a store can hold (default 65,536: 512 KiB, reserved up front but only touched as it grows). */
  max?: number;
}

interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  grow(byteLength: number): void;
  readonly maxByteLength: number;
}
// Node 20 ships growable SharedArrayBuffers; TypeScript's ES2023 lib does not declare them yet.
const GrowableSAB = SharedArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => GrowableSharedArrayBuffer;

const SLOT_BYTES = BigInt64Array.BYTES_PER_ELEMENT;

export interface CounterSlots {
  readonly buffer: SharedArrayBuffer;
  /** A view that tracks the buffer's growth. */
  readonly view: BigInt64Array;
  /** The slot of `name`, allocated (and the buffer grown) on first use. */
  slotFor(name: string): number;
  slotOf(name: string): number | undefined;
  readonly used: number;
  readonly max: number;
}

export function createCounterSlots({ initial = 1_024, max = 65_536 }: CounterSlotsOptions = {}): CounterSlots {
  if (!Number.isSafeInteger(initial) || initial < 1)
    throw new WharfError('ERR_CONFIG', `counters.initial must be a positive integer; got ${initial}.`);
  if (!Number.isSafeInteger(max) || max < initial)
    throw new WharfError('ERR_CONFIG', `counters.max must be an integer >= counters.initial (${initial}); got ${max}.`);
  const buffer = new GrowableSAB(initial * SLOT_BYTES, { maxByteLength: max * SLOT_BYTES });
  const view = new BigInt64Array(buffer);
  const slots = new Map<string, number>();

  function slotFor(name: string): number {
    const known = slots.get(name);
    if (known !== undefined) return known;
    const slot = slots.size;
    if (slot >= max) {
      throw new WharfError(
        'ERR_STATE_CAPACITY',
        `Cannot create counter ${JSON.stringify(name)}: the store already has ${max} counters, its maximum. ` +
          'Reuse counter names (a map of numbers suits per-key counts), or raise counters.max in createStateStore.',
        { context: { name, max } },
      );
    }
    if ((slot + 1) * SLOT_BYTES > buffer.byteLength)
      buffer.grow(Math.min(max, Math.max(slot + 1, (buffer.byteLength / SLOT_BYTES) * 2)) * SLOT_BYTES);
    slots.set(name, slot);
    return slot;
  }

  return {
    buffer,
    view,
    slotFor,
    slotOf: (name) => slots.get(name),
    get used() {
      return slots.size;
    },
    max,
  };
}

/** The owner's side of one counter: slot lookup for clients, and writes that watchers should see. */
export function createCounter(env: ObjectEnv, slots: CounterSlots, onWrite: (slot: number, total: number) => void): StateObject {
  const slot = slots.slotFor(env.name);
  const where = (op: string) => `${describeObject('counter', env.name)} .${op}`;
  const read = () => Number(Atomics.load(slots.view, slot));
  function store(value: number): void {
    Atomics.store(slots.view, slot, BigInt(value));
    onWrite(slot, value);
    env.emit('set', undefined, value);
  }
  // A new (or re-created) counter starts at zero even if its reserved slot held a value.
  Atomics.store(slots.view, slot, 0n);
  return {
    kind: 'counter',
    ops: opTable({
      slot: () => (env.persisted ? NO_SLOT : slot),
      get: read,
      add: ([n]) => {
        const by = intArg(n ?? 1, where('add') + ' n');
        const total = Number(Atomics.add(slots.view, slot, BigInt(by))) + by;
        onWrite(slot, total);
        env.emit('add', undefined, total);
        return total;
      },
      set: ([value]) => store(intArg(value, where('set') + ' value')),
    }),
    size: () => 1,
    snapshot: read,
    load: (value) => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw loadError('counter', env.name, 'a safe integer');
      store(value);
    },
  };
}
