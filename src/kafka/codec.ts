import { DecodeError, EncodeError } from '../errors.js';

export { DecodeError } from '../errors.js';

/**
 * How values become bytes on Kafka and back. A service picks one for what it consumes and as the
 * default for what it sends (`defineService({ codec })`); a send can pick another. JSON and raw
 * bytes ship here; an Avro or Protobuf codec is an object of this shape (its `decode` throws a
 * DecodeError for bytes it cannot read, so they are parked instead of retried).
 */
export interface Codec<T = unknown> {
  /** Short name used in config and logs: "json", "raw", "avro"… */
  name: string;
  /** Sent as the `content-type` header. */
  contentType: string;
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

export const jsonCodec: Codec = {
  name: 'json',
  contentType: 'application/json',
  encode(value) {
    if (value === undefined) throw new EncodeError('Cannot send undefined as JSON: send null or a JSON value.');
    return Buffer.from(JSON.stringify(value));
  },
  decode(bytes) {
    if (bytes.length === 0) throw new DecodeError('empty value (expected JSON)');
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      throw new DecodeError(`value is not JSON: ${(error as Error).message}`, { cause: error });
    }
  },
};

/** Bytes as they are: a handler gets a Buffer (empty for a null value); sends take a Buffer, Uint8Array or string. */
export const rawCodec: Codec = {
  name: 'raw',
  contentType: 'application/octet-stream',
  encode(value) {
    if (Buffer.isBuffer(value)) return value;
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    throw new EncodeError(
      `The raw codec sends a Buffer, Uint8Array or string; got ${value === null ? 'null' : typeof value}. Use the JSON codec for other values.`,
    );
  },
  decode: (bytes) => bytes,
};

export const CODECS = { json: jsonCodec, raw: rawCodec } as const;
export type CodecName = keyof typeof CODECS;

/** A codec by name, or the codec object itself. */
export function resolveCodec(codec: CodecName | Codec | undefined): Codec {
  if (codec === undefined) return jsonCodec;
  if (typeof codec === 'string') return CODECS[codec];
  return codec;
}

export function isCodec(value: unknown): value is Codec {
  const c = value as Partial<Codec> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.name === 'string' &&
    typeof c.contentType === 'string' &&
    typeof c.encode === 'function' &&
    typeof c.decode === 'function'
  );
}

export const HEADERS = {
  contentType: 'content-type',
  messageId: 'message-id',
  correlationId: 'correlation-id',
  replyTo: 'reply-to',
  attempt: 'attempt',
  /** W3C Trace Context (https://www.w3.org/TR/trace-context/): version-traceid-parentid-flags. */
  traceparent: 'traceparent',
  /** On a replayed dead letter: `<dlq-topic>/<partition>/<offset>` it was replayed from. */
  replayOf: 'wharf-replay-of',
  replayedAt: 'wharf-replayed-at',
} as const;

/** kafkajs headers (Buffer | string | arrays) as plain strings. */
export function headersToStrings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  // for…in over own keys, not Object.entries: this runs for every message, and an array of pairs per message costs.
  for (const key in headers) {
    if (!Object.hasOwn(headers, key)) continue;
    const value = headers[key];
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined && first !== null) out[key] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}
