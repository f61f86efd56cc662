import type { KafkaMessage } from 'kafkajs';
import { MessageTooLargeError } from '../errors.js';
import type { InboundMessage } from './message.js';
import { headersToStrings, type Codec } from './codec.js';
import { validateMessage, type MessageSchema } from './message-schema.js';

export interface InboundOptions {
  codec: Codec;
  schema?: MessageSchema;
  maxMessageBytes: number;
}

/**
 * Turns a Kafka record into what a handler gets, in the order that costs least for bad input:
 * size (no bytes read), then the codec, then the schema. Anything that fails throws a
 * RejectedMessageError whose code says which (ERR_MESSAGE_TOO_LARGE, ERR_DECODE, ERR_SCHEMA):
 * the consumer parks such a message at once instead of retrying it. Synchronous (it throws)
 * unless there is a schema to validate: this runs for every message, and a promise costs.
 */
export function createInboundDecoder({ codec, schema, maxMessageBytes }: InboundOptions) {
  return function decode(topic: string, partition: number, message: KafkaMessage): InboundMessage | Promise<InboundMessage> {
    const bytes = message.value ?? Buffer.alloc(0);
    if (bytes.length > maxMessageBytes) {
      throw new MessageTooLargeError(
        `value of ${bytes.length} bytes is over the ${maxMessageBytes}-byte limit (consumes.maxMessageBytes)`,
        {
          context: { bytes: bytes.length, maxMessageBytes },
        },
      );
    }
    const decoded = codec.decode(bytes);
    const inbound: InboundMessage = {
      value: decoded,
      key: message.key ? message.key.toString('utf8') : null,
      headers: headersToStrings(message.headers),
      topic,
      partition,
      offset: message.offset,
      timestamp: message.timestamp,
    };
    if (!schema) return inbound;
    return validateMessage(schema, decoded).then((value) => {
      inbound.value = value;
      return inbound;
    });
  };
}

export type InboundDecoder = ReturnType<typeof createInboundDecoder>;
