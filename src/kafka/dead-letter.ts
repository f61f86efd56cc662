import type { KafkaMessage } from 'kafkajs';
import { headersToStrings } from './codec.js';
import type { Sender } from './sender.js';
import type { ThreadMetrics } from '../thread-metrics.js';

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
  /** The error's `code` (ERR_DECODE, ERR_SCHEMA, ERR_MESSAGE_TOO_LARGE, a handler's own…), when it has one. */
  errorCode: 'wharf-dlq-error-code',
  errorName: 'wharf-dlq-error-name',
  errorMessage: 'wharf-dlq-error-message',
  errorStack: 'wharf-dlq-error-stack',
  attempts: 'wharf-dlq-attempts',
  at: 'wharf-dlq-at',
  /** Set when the value was too big for the dead-letter topic itself: its size in bytes, the value left out. */
  valueDropped: 'wharf-dlq-value-dropped',
} as const;

export const DLQ_HEADER_PREFIX = 'wharf-dlq-';

export interface DeadLetterSource {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

function isTooLarge(error: unknown): boolean {
  for (let e = error as { type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE') return true;
  }
  return false;
}

/**
 * Parks the original bytes, key and headers in `<topic>.dlq`, plus why; resolves when
 * acknowledged. A value the dead-letter topic refuses as too large is parked without it (its
 * size in a header), so the reason and the position still reach the operator.
 */
export async function deadLetter(
  sender: Sender,
  { topic, partition, message }: DeadLetterSource,
  { error, attempts }: DeadLetterReason,
  metrics?: Pick<ThreadMetrics, 'deadLettered'>,
): Promise<void> {
  const code = (error as { code?: unknown }).code;
  const headers: Record<string, string> = {
    ...headersToStrings(message.headers),
    [DLQ_HEADERS.topic]: topic,
    [DLQ_HEADERS.partition]: String(partition),
    [DLQ_HEADERS.offset]: message.offset,
    ...(typeof code === 'string' ? { [DLQ_HEADERS.errorCode]: code } : {}),
    [DLQ_HEADERS.errorName]: error.name,
    [DLQ_HEADERS.errorMessage]: error.message.slice(0, 2_000),
    [DLQ_HEADERS.errorStack]: (error.stack ?? '').slice(0, 8_000),
    [DLQ_HEADERS.attempts]: String(attempts),
    [DLQ_HEADERS.at]: new Date().toISOString(),
  };
  const key = message.key ?? null;
  try {
    await sender.sendRaw(deadLetterTopic(topic), { key, value: message.value ?? null, headers });
  } catch (sendError) {
    if (!isTooLarge(sendError) || !message.value) throw sendError;
    await sender.sendRaw(deadLetterTopic(topic), {
      key,
      value: null,
      headers: { ...headers, [DLQ_HEADERS.valueDropped]: String(message.value.length) },
    });
  }
  metrics?.deadLettered(topic, typeof code === 'string' ? code : undefined);
}
