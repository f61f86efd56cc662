import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context `traceparent` headers (https://www.w3.org/TR/trace-context/):
 * `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. Every message wharf sends carries one:
 * a handler's sends are children of the message it handles (same trace id, new parent id), so a
 * request, its reply and whatever they cause line up as one trace in any tracing backend; a send
 * with nothing to descend from starts a new trace.
 */
export interface TraceParent {
  traceId: string;
  parentId: string;
  flags: string;
}

const PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);

/** The header parsed, or undefined when it is missing or not valid (version ff, all-zero ids). */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  if (!header) return undefined;
  const match = PATTERN.exec(header.trim().toLowerCase());
  if (!match) return undefined;
  const [, version, traceId, parentId, flags, rest] = match;
  // Version 00 has exactly four fields; later versions may append more, which we ignore.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_PARENT) return undefined;
  return { traceId: traceId!, parentId: parentId!, flags: flags! };
}

export function formatTraceparent({ traceId, parentId, flags }: TraceParent): string {
  return `00-${traceId}-${parentId}-${flags}`;
}

/**
 * Random bytes drawn from a pool filled 4 KB at a time: every message sent needs 8 or 24 of them,
 * and asking the system for so few on each call cost more than the rest of a send.
 */
const pool = Buffer.alloc(4_096);
let poolAt = pool.length;

function nonZeroHex(bytes: number): string {
  for (;;) {
    if (poolAt + bytes > pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const hex = pool.toString('hex', poolAt, (poolAt += bytes));
    if (!/^0+$/.test(hex)) return hex;
  }
}

/** A new trace (sampled flag set, so backends that honour it keep it). */
export function newTraceparent(): string {
  return formatTraceparent({ traceId: nonZeroHex(16), parentId: nonZeroHex(8), flags: '01' });
}

/** A child of `parent` (same trace, new parent id), or a new trace when `parent` is missing or invalid. */
export function childTraceparent(parent: string | undefined): string {
  const parsed = parseTraceparent(parent);
  if (!parsed) return newTraceparent();
  return formatTraceparent({ ...parsed, parentId: nonZeroHex(8) });
}
