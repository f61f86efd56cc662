import type { Message, Producer } from 'kafkajs';
import type { Ledger } from './ledger.js';
import { encodeRequest, requestHeaders, requestKey } from './request.js';
import type { Timeline } from './timeline.js';

/**
 * The traffic: requests produced on a schedule. With a rate it is an open loop — request `seq`
 * is due at `start + seq / rate` and carries that time, so when the generator or the broker falls
 * behind, the delay shows in the latencies instead of silently lowering the load (coordinated
 * omission). Without a rate it is a closed loop that keeps `maxInFlight` requests unanswered.
 */
export type LoadLimit = { messages: number } | { durationMs: number };

export interface GeneratorOptions {
  producer: Producer;
  topic: string;
  replyTo: string;
  size: number;
  keys: number;
  /** Requests per second; null sends as fast as `maxInFlight` allows. */
  rate: number | null;
  /** Requests sent and not yet answered at most; null for no cap. */
  maxInFlight: number | null;
  limit: LoadLimit;
  /** Bytes per produce call at most: kafkajs puts one call's messages in one batch, which the broker limits. */
  maxBatchBytes: number;
  ledger: Ledger;
  timeline: Timeline;
  /** A send that failed after the producer's own retries. */
  onSendError(error: Error): void;
}

export interface Generator {
  /** Starts the schedule; `performance.now()` of the start is returned. */
  start(): number;
  /** Sends what is due now; the reply collector calls it so a closed loop refills at once. */
  wake(): void;
  /** Resolves once the last request is sent and every send settled. */
  readonly finished: Promise<void>;
  /** Stops sending early (Ctrl-C); `finished` still waits for sends in flight. */
  stop(): void;
  readonly pendingSends: number;
}

export function createGenerator(options: GeneratorOptions): Generator {
  const { producer, topic, replyTo, size, keys, rate, maxInFlight, limit, maxBatchBytes, ledger, timeline } = options;
  const total = 'messages' in limit ? limit.messages : rate === null ? Infinity : Math.floor((limit.durationMs / 1_000) * rate);
  const durationMs = 'durationMs' in limit ? limit.durationMs : Infinity;
  let startedAt = 0;
  let next = 0;
  let pending = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let scheduled = false;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));

  const inFlight = () => {
    const c = ledger.counts;
    return c.sent - c.sendErrors - c.answered - c.deadLettered;
  };

  const exhausted = (now: number) => stopped || next >= total || (rate === null && now - startedAt >= durationMs);

  function send(batch: Message[], first: number): void {
    pending++;
    producer
      .send({ topic, acks: -1, messages: batch })
      .then(
        () => {
          for (let seq = first; seq < first + batch.length; seq++) ledger.acked(seq);
        },
        (error: Error) => {
          for (let seq = first; seq < first + batch.length; seq++) ledger.failed(seq);
          options.onSendError(error);
        },
      )
      .finally(() => {
        pending--;
        settle();
      });
  }

  function settle(): void {
    if (pending === 0 && exhausted(performance.now())) {
      clearTimeout(timer);
      resolveFinished();
    }
  }

  function tick(): void {
    scheduled = false;
    const now = performance.now();
    if (exhausted(now)) return settle();
    const due = rate === null ? total : Math.min(total, Math.floor(((now - startedAt) / 1_000) * rate) + 1);
    const room = maxInFlight === null ? Infinity : maxInFlight - inFlight();
    const count = Math.max(0, Math.min(due - next, room));
    let batch: Message[] = [];
    let bytes = 0;
    let first = next;
    for (let i = 0; i < count; i++, next++) {
      const dueAt = rate === null ? now : startedAt + (next * 1_000) / rate;
      const value = encodeRequest(next, performance.timeOrigin + dueAt, size);
      if (batch.length > 0 && bytes + value.length > maxBatchBytes) {
        send(batch, first);
        batch = [];
        bytes = 0;
        first = next;
      }
      batch.push({ key: requestKey(next, keys), value, headers: requestHeaders(next, replyTo) });
      bytes += value.length;
      ledger.sent(next, dueAt);
    }
    if (batch.length > 0) send(batch, first);
    timeline.recordSent(count);
    if (exhausted(performance.now())) return settle();
    // 1 ms: the timer's floor. At 5,000/s that is ~5 requests per produce call, so batching is
    // bounded by the schedule, not by a linger that would add to every request's latency.
    timer = setTimeout(tick, 1);
  }

  return {
    start() {
      startedAt = performance.now();
      tick();
      return startedAt;
    },
    wake() {
      if (scheduled || startedAt === 0 || exhausted(performance.now())) return;
      scheduled = true;
      clearTimeout(timer);
      setImmediate(tick);
    },
    finished,
    stop() {
      stopped = true;
      clearTimeout(timer);
      settle();
    },
    get pendingSends() {
      return pending;
    },
  };
}
