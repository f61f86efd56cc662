import type { Codec, CodecName } from './codec.js';
import type { MessageSchema } from './message-schema.js';

/** A message as a handler sees it, and how one is sent or requested (src/service.ts re-exports these for users). */
export interface InboundMessage<V = unknown> {
  value: V;
  key: string | null;
  headers: Record<string, string>;
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
}

export interface SendOptions {
  key?: string | null;
  headers?: Record<string, string>;
  partition?: number;
  /** Encode this value with another codec than the service's (`defineService({ codec })`, JSON by default). */
  codec?: CodecName | Codec;
}

export interface RequestOptions<R = unknown> {
  /** Rejects with a TimeoutError (code ERR_TIMEOUT) when no reply arrived by then; default: the service's `requestTimeoutMs`, else 30 s. */
  timeoutMs?: number;
  key?: string | null;
  headers?: Record<string, string>;
  codec?: CodecName | Codec;
  /** Checks the reply; one that fails rejects the request with a SchemaError. */
  schema?: MessageSchema<R>;
}

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}
