import type { EachMessagePayload } from 'kafkajs';
import { headersToStrings } from './codec.js';
import type { Sender } from './sender.js';

export interface DeadLetterReason {
  error: Error;
  /** Handler attempts made (0: the value never reached the handler). */
  attempts: number;
}

export const DLQ_SUFFIX = '.dlq';

export function deadLetterTopic(topic: string): string {
  return `${topic}${DLQ_SUFFIX}`;
}

/** Headers that say where a dead letter came from and why. */
export const DLQ_HEADERS = {
  topic: 'wharf-dlq-topic',
  partition: 'wharf-dlq-partition',
  offset: 'wharf-dlq-offset',
  errorName: 'wharf-dlq-error-name',
  errorMessage: 'wharf-dlq-error-message',
  errorStack: 'wharf-dlq-error-stack',
  attempts: 'wharf-dlq-attempts',
  at: 'wharf-dlq-at',
} as const;

/** Parks the original bytes, key and headers in `<topic>.dlq`, plus why; resolves when acknowledged. */
export async function deadLetter(sender: Sender, { topic, partition, message }: EachMessagePayload, { error, attempts }: DeadLetterReason): Promise<void> {
  await sender.sendRaw(deadLetterTopic(topic), {
    key: message.key ?? null,
    value: message.value ?? null,
    headers: {
      ...headersToStrings(message.headers),
      [DLQ_HEADERS.topic]: topic,
      [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: message.offset,
      [DLQ_HEADERS.errorName]: error.name,
      [DLQ_HEADERS.errorMessage]: error.message.slice(0, 2_000),
      [DLQ_HEADERS.errorStack]: (error.stack ?? '').slice(0, 8_000),
      [DLQ_HEADERS.attempts]: String(attempts),
      [DLQ_HEADERS.at]: new Date().toISOString(),
    },
  });
}
