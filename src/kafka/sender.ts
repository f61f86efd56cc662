import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { SendOptions } from '../service.js';
import { HEADERS, jsonCodec, type Codec } from './codec.js';
import { producerConfig } from './client.js';

export interface Sender {
  connect(): Promise<void>;
  /** Encodes and sends one value; resolves once acknowledged by all in-sync replicas. */
  send(topic: string, value: unknown, options?: SendOptions): Promise<void>;
  /** Sends bytes as they are (dead letters, replays). */
  sendRaw(topic: string, message: { key: Buffer | string | null; value: Buffer | null; headers: Record<string, string> }): Promise<void>;
  disconnect(): Promise<void>;
  /** Sends acknowledged so far. */
  readonly sent: number;
}

/** One idempotent producer per worker, shared by everything the worker sends. */
export function createSender(kafka: Kafka, { codec = jsonCodec }: { codec?: Codec } = {}): Sender {
  const producer: Producer = kafka.producer(producerConfig());
  let sent = 0;
  return {
    connect: () => producer.connect(),
    async send(topic, value, { key = null, headers = {}, partition } = {}) {
      await producer.send({
        topic,
        acks: -1,
        messages: [
          {
            key,
            value: codec.encode(value),
            partition,
            headers: { [HEADERS.contentType]: codec.contentType, [HEADERS.messageId]: randomUUID(), ...headers },
          },
        ],
      });
      sent++;
    },
    async sendRaw(topic, message) {
      await producer.send({ topic, acks: -1, messages: [message] });
      sent++;
    },
    disconnect: () => producer.disconnect(),
    get sent() {
      return sent;
    },
  };
}
