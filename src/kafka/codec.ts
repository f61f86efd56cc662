import { WharfError } from '../errors.js';

/**
 * How values become bytes on Kafka and back. JSON by default; the interface leaves room for
 * raw bytes, Avro or Protobuf codecs later.
 */
export interface Codec {
  contentType: string;
  encode(value: unknown): Buffer;
  decode(bytes: Buffer): unknown;
}

/** A value that cannot be decoded: parked in the dead-letter topic, never retried. */
export class DecodeError extends WharfError {
  override readonly name = 'DecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DECODE', message, { ...options, retriable: false });
  }
}

export const jsonCodec: Codec = {
  contentType: 'application/json',
  encode(value) {
    if (value === undefined) throw new WharfError('ERR_ENCODE', 'Cannot send undefined: send null or a JSON value.');
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

export const HEADERS = {
  contentType: 'content-type',
  messageId: 'message-id',
  correlationId: 'correlation-id',
  replyTo: 'reply-to',
  attempt: 'attempt',
} as const;

/** kafkajs headers (Buffer | string | arrays) as plain strings. */
export function headersToStrings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined && first !== null) out[key] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}
