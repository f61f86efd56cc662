import { HEADERS } from '../../src/kafka/codec.js';

/**
 * One load request: a JSON value of exactly `size` bytes that carries its id and the time it was
 * due, readable by the demo's Jarvis (`n`, `text`) and echoed by the echo service. The reply is
 * matched by its `correlation-id` header, which every wharf `ctx.reply` carries back, so any
 * service that answers with `ctx.reply` can be put under load whatever its reply looks like.
 */
export interface LoadRequest {
  id: number;
  /** When the request was due, in epoch milliseconds with microseconds. */
  sentAt: number;
  n: number;
  text: string;
  pad: string;
}

/** The smallest `--size`: id, timestamp and text take about 90 bytes for a run of billions. */
export const MIN_REQUEST_BYTES = 128;

/**
 * Bytes a record needs beyond its value: key, headers (reply-to, correlation-id, content type),
 * record and batch framing, and what a service adds to its reply (Jarvis adds its answer and
 * worker id). Generous on purpose, so a size that passes this check is never refused by the broker.
 */
export const RECORD_OVERHEAD_BYTES = 1_024;

const PADDING = 'x'.repeat(64 * 1_024);

function padding(length: number): string {
  if (length <= 0) return '';
  if (length <= PADDING.length) return PADDING.slice(0, length);
  return PADDING.repeat(Math.ceil(length / PADDING.length)).slice(0, length);
}

/** The JSON text of request `seq`, padded to `size` bytes (every byte is ASCII). */
export function encodeRequest(seq: number, sentAtEpochMs: number, size: number): string {
  const head = `{"id":${seq},"sentAt":${Math.round(sentAtEpochMs * 1_000) / 1_000},"n":${seq},"text":"load request #${seq}","pad":"`;
  const tail = '"}';
  return head + padding(size - head.length - tail.length) + tail;
}

export function requestKey(seq: number, keys: number): string | null {
  return keys > 0 ? `k${seq % keys}` : null;
}

export function requestHeaders(seq: number, replyTo: string): Record<string, string> {
  return { [HEADERS.contentType]: 'application/json', [HEADERS.replyTo]: replyTo, [HEADERS.correlationId]: String(seq) };
}

/** The id a reply or dead letter answers, from its correlation-id header; NaN when absent or foreign. */
export function correlatedSeq(header: Buffer | string | (Buffer | string)[] | undefined): number {
  const first = Array.isArray(header) ? header[0] : header;
  if (first === undefined) return NaN;
  const text = typeof first === 'string' ? first : first.toString('latin1');
  return /^\d{1,15}$/.test(text) ? Number(text) : NaN;
}
