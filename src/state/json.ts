import { WharfError } from '../errors.js';

/**
 * Shared state holds JSON and nothing else, so a snapshot, an admin read and a Kafka-backed copy
 * all mean the same thing. Structured clone would carry Dates, Maps and cycles across a
 * MessagePort and throw a bare DataCloneError on functions; checking first gives one clear error
 * that names where the offending part is.
 */

/** Where a value is not JSON (`$.a[2]: a function`), or undefined when it is. */
export function jsonProblem(value: unknown): string | undefined {
  if (value === undefined) return '$: undefined (delete the key instead, or store null)';
  return walk(value, '$', []);
}

function walk(value: unknown, path: string, ancestors: object[]): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path}: ${value} (JSON numbers are finite)`;
    case 'undefined':
      return `${path}: undefined`;
    case 'function':
      return `${path}: a function`;
    case 'symbol':
      return `${path}: a symbol`;
    case 'bigint':
      return `${path}: a bigint (use a number or a string)`;
  }
  if (value === null) return undefined;
  const object = value as object;
  if (ancestors.includes(object)) return `${path}: a circular reference`;
  if (Array.isArray(object)) {
    ancestors.push(object);
    for (let i = 0; i < object.length; i++) {
      if (!(i in object)) return `${path}[${i}]: a hole in a sparse array`;
      const problem = walk(object[i], `${path}[${i}]`, ancestors);
      if (problem) return problem;
    }
    ancestors.pop();
    return undefined;
  }
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = object instanceof Date ? 'a Date (store date.toISOString())' : `a ${proto?.constructor?.name ?? 'non-plain'} object`;
    return `${path}: ${kind}`;
  }
  if (Object.getOwnPropertySymbols(object).length > 0) return `${path}: an object with symbol keys`;
  ancestors.push(object);
  for (const key of Object.keys(object)) {
    const field = (object as Record<string, unknown>)[key];
    // Optional fields set to undefined are common in typed objects; JSON drops them, and so do we.
    if (field === undefined) continue;
    const problem = walk(field, `${path}.${key}`, ancestors);
    if (problem) return problem;
  }
  ancestors.pop();
  return undefined;
}

/** Throws ERR_STATE_VALUE naming what was not JSON and where it was going. */
export function assertJson(value: unknown, where: string): void {
  // Primitives are most of the traffic; keep them off the walk.
  const type = typeof value;
  if (type === 'string' || type === 'boolean' || value === null) return;
  if (type === 'number' && Number.isFinite(value)) return;
  const problem = jsonProblem(value);
  if (problem === undefined) return;
  throw new WharfError(
    'ERR_STATE_VALUE',
    `${where} is not JSON: ${problem}. Shared state holds JSON values (objects, arrays, strings, finite numbers, booleans, null); send data, not code.`,
    { context: { where, problem } },
  );
}

/** A deep copy of a value already known to be JSON; undefined object fields are dropped. */
export function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    // defineProperty, not assignment: a "__proto__" key stays a plain field.
    if (field !== undefined)
      Object.defineProperty(out, key, { value: copyJson(field), enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}

/** Deep equality of JSON values, the test compare-and-set uses; undefined fields count as absent. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const left = definedKeys(a);
  const right = definedKeys(b);
  if (left.length !== right.length) return false;
  for (const key of left) {
    if (!Object.hasOwn(b, key)) return false;
    if (!jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false;
  }
  return true;
}

function definedKeys(object: object): string[] {
  return Object.keys(object).filter((key) => (object as Record<string, unknown>)[key] !== undefined);
}
