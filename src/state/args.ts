import { WharfError } from '../errors.js';
import { assertJson } from './json.js';

/**
 * Argument checks for the store's operations. Arguments arrive from other threads, so the store
 * checks every one itself; the messages name the call the user made (`map "m" .get key`).
 */

function argumentError(where: string, expected: string, got: unknown): WharfError {
  const shown =
    typeof got === 'string' ? JSON.stringify(got) : typeof got === 'object' ? (got === null ? 'null' : 'an object') : String(got);
  return new WharfError('ERR_STATE_ARGUMENT', `${where} must be ${expected}; got ${shown}.`, { context: { where } });
}

export function keyArg(value: unknown, where: string): string {
  if (typeof value !== 'string') throw argumentError(where, 'a string', value);
  return value;
}

export function intArg(value: unknown, where: string, min = Number.MIN_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw argumentError(where, min === Number.MIN_SAFE_INTEGER ? 'a safe integer' : `an integer >= ${min}`, value);
  }
  return value;
}

export function optionalIntArg(value: unknown, where: string): number | undefined {
  return value === undefined || value === null ? undefined : intArg(value, where);
}

export function jsonArg<T = unknown>(value: unknown, where: string): T {
  assertJson(value, where);
  return value as T;
}

/** Timers cannot wait longer than this; anything longer means "no deadline". */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration in ms, or undefined for "none" (undefined, null, Infinity, or beyond what a timer holds). */
export function durationArg(value: unknown, where: string): number | undefined {
  if (value === undefined || value === null || value === Infinity) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) throw argumentError(where, 'a number of milliseconds >= 0', value);
  return value > MAX_TIMER_MS ? undefined : value;
}

export function positiveIntArg(value: unknown, where: string): number {
  return intArg(value, where, 1);
}
