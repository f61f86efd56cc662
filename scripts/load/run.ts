import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { createKafka, producerConfig } from '../../src/kafka/client.js';
import { deadLetterTopic } from '../../src/kafka/dead-letter.js';
import { createTopics } from '../../src/kafka/topics.js';
import type { Logger } from '../../src/log.js';
import { startBareResponder } from './bare-responder.js';
import { checkRequestSize, messageSizeLimit } from './broker-limits.js';
import { createCollector, type Collector } from './collector.js';
import { createGenerator, type LoadLimit } from './generator.js';
import { consumerLag, waitForStableGroup } from './lag.js';
import type { LatencySummary } from './latency.js';
import { createLedger } from './ledger.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { startTarget, type LoadTarget, type RunningTarget } from './target.js';
import { createTimeline, type TimelinePoint } from './timeline.js';

/** One load run: real requests through a real service on a real broker, every one accounted for. */
export interface LoadSettings {
  brokers: string[];
  target: LoadTarget;
  workers: number;
  partitions: number;
  limit: LoadLimit;
  rate: number | null;
  maxInFlight: number | null;
  size: number;
  keys: number;
  /** The run's own logger (stderr). */
  logger: Logger;
  /** The in-process supervisor's logger; its level is also its workers' level (they log to stdout). */
  serviceLogger?: Logger;
  /** Who answers: the service in wharf (default), or the benchmark's bare kafkajs responder. */
  responder?: 'wharf' | 'kafkajs';
  /** How long to wait for the last replies once everything is sent. */
  settleTimeoutMs?: number;
  /** Requests due within this long of the start are left out of the latency percentiles (and only of those). */
  warmupMs?: number;
  intervalMs?: number;
  onTick?(progress: LoadProgress): void;
  /** Called once traffic starts (the chaos run schedules its faults from here). */
  onStart?(run: { topics: { requests: string; replies: string }; supervisor?: Supervisor }): void;
  /** Aborting stops sending; the run still waits for replies in flight and reports. */
  signal?: AbortSignal;
}

export interface LoadProgress {
  point: TimelinePoint;
  /** The length of the point's interval: answered / intervalS is the current rate. */
  intervalS: number;
  elapsedS: number;
  sent: number;
  answered: number;
  /** Messages to send in all, when the run is bounded by --messages (or --duration with --rate). */
  total: number | null;
  durationS: number | null;
  /** The last tick, after the last reply: a view shows it whatever its own pace. */
  final: boolean;
}

export interface LoadResult {
  service: string;
  module: string;
  workers: number;
  partitions: number;
  size: number;
  keys: number;
  rate: number | null;
  maxInFlight: number | null;
  messages: number | null;
  durationLimitS: number | null;
  brokers: string[];
  /** The run's own topics: deleted after the run, kept when requests were lost so they can be inspected. */
  topics: { requests: string; replies: string; deadLetters: string; kept: boolean };
  startedAt: string;
  /** From the first request to the last reply (or the end of waiting for it). */
  elapsedS: number;
  sendS: number;
  sent: number;
  acked: number;
  answered: number;
  lost: number;
  duplicates: number;
  deadLettered: number;
  sendErrors: number;
  unknownReplies: number;
  /** sendErrors + deadLettered + unknownReplies + worker crashes. */
  errors: number;
  crashes: { workerId: string; reason: string }[];
  throughput: { sentPerSec: number; answeredPerSec: number };
  /** Seconds at the start whose requests `latencyMs` leaves out (0: none). */
  warmupS: number;
  /** End-to-end latency of the first replies to requests due after the warm-up. */
  latencyMs: LatencySummary;
  /** Up to 20 ids of lost requests, to look for in the topics. */
  lostSample: number[];
  aborted: boolean;
  machine: { cpus: number; loadavg: number[]; node: string };
  timeline: TimelinePoint[];
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function createRunTopics(admin: Admin, names: { requests: string; replies: string; dlq: string }, partitions: number): Promise<void> {
  await createTopics(admin, [
    { topic: names.requests, numPartitions: partitions },
    { topic: names.replies, numPartitions: partitions },
    { topic: names.dlq, numPartitions: 1 },
  ]);
}

export async function runLoad(settings: LoadSettings): Promise<LoadResult> {
  const { brokers, target, workers, partitions, limit, rate, maxInFlight, size, keys, logger, serviceLogger = settings.logger } = settings;
  const intervalMs = settings.intervalMs ?? 1_000;
  const log = logger.child({ component: 'load' });
  const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const base = `wharf-load-${target.name.replace(/[^\w.-]/g, '_').slice(-40)}-${run}`;
  const names = {
    requests: `${base}.requests`,
    replies: `${base}.replies`,
    dlq: deadLetterTopic(`${base}.requests`),
    group: base,
    collector: `${base}-collector`,
  };
  const kafka: Kafka = createKafka({ brokers, logger: log, clientId: 'wharf-load' });
  const admin = kafka.admin();
  const cleanups: (() => Promise<unknown>)[] = [];
  const crashes: LoadResult['crashes'] = [];
  let keepTopics = false;
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  try {
    // Before anything is created: a size the broker would refuse is a one-line error.
    checkRequestSize(size, await messageSizeLimit(admin));
    await createRunTopics(admin, names, partitions);
    cleanups.push(async () => keepTopics || (await admin.deleteTopics({ topics: [names.requests, names.replies, names.dlq] })));
    const sizeLimit = await messageSizeLimit(admin, [names.requests, names.replies]);
    checkRequestSize(size, sizeLimit);

    const bare = settings.responder === 'kafkajs';
    const running: RunningTarget & { supervisor?: Supervisor } = bare
      ? await startBareResponder({ brokers, topic: names.requests, groupId: names.group })
      : await startTarget({
          target,
          brokers,
          workers,
          requestTopic: names.requests,
          groupId: names.group,
          logger: serviceLogger,
          onCrash: (workerId, reason) => {
            crashes.push({ workerId, reason });
            log.warn({ workerId, reason }, 'worker crashed during the load run; the supervisor restarts it');
          },
        });
    // Pushed before the service's stop, so it runs after it: a group with members cannot be deleted.
    cleanups.push(() => admin.deleteGroups([names.group, names.collector]).catch(() => undefined));
    cleanups.push(() => running.stop());
    await waitForStableGroup(admin, names.group, bare ? 1 : workers);

    const ledger = createLedger('messages' in limit ? limit.messages : 1 << 16);
    const timeline = createTimeline({ warmupMs: settings.warmupMs ?? 0 });
    let lastAnswerAt = 0;
    let generatorWake = () => {};
    const collector: Collector = createCollector({
      kafka,
      groupId: names.collector,
      replyTopic: names.replies,
      deadLetterTopic: names.dlq,
      ledger,
      timeline,
      onProgress: () => {
        lastAnswerAt = performance.now();
        generatorWake();
      },
    });
    await collector.start();
    cleanups.push(() => collector.stop());
    const producer: Producer = kafka.producer(producerConfig());
    await producer.connect();
    cleanups.push(() => producer.disconnect());

    const generator = createGenerator({
      producer,
      topic: names.requests,
      replyTo: names.replies,
      size,
      keys,
      rate,
      maxInFlight,
      limit,
      ledger,
      timeline,
      maxBatchBytes: Math.max(1, Math.min(512 * 1_024, sizeLimit.bytes / 2)),
      onSendError: (error) => log.error({ err: error.message }, 'a request could not be sent'),
    });
    generatorWake = () => generator.wake();
    const onAbort = () => generator.stop();
    settings.signal?.addEventListener('abort', onAbort, { once: true });

    const counts = ledger.counts;
    const inFlight = () => counts.sent - counts.sendErrors - counts.answered - counts.deadLettered;
    let lag: number | null = null;
    let probing = false;
    // Lag is two admin requests; the answer is written into the interval that asked, and a slow
    // probe is never stacked behind the next one.
    const probeLag = (point: TimelinePoint) => {
      if (probing) return Promise.resolve();
      probing = true;
      return consumerLag(admin, names.group, names.requests)
        .then(
          (l) => void (point.lag = lag = l),
          () => undefined,
        )
        .finally(() => (probing = false));
    };
    const total = 'messages' in limit ? limit.messages : rate === null ? null : Math.floor((limit.durationMs / 1_000) * rate);
    const durationS = 'durationMs' in limit ? limit.durationMs / 1_000 : null;
    const startedAtIso = new Date().toISOString();
    const startedAt = generator.start();
    timeline.begin(startedAt);
    settings.onStart?.({ topics: { requests: names.requests, replies: names.replies }, supervisor: running.supervisor });
    if (settings.signal?.aborted) generator.stop(); // Ctrl-C while the service was starting
    const clock = setInterval(() => {
      const point = timeline.close(performance.now(), inFlight(), null);
      void probeLag(point);
      settings.onTick?.({
        point: { ...point, lag },
        intervalS: intervalMs / 1_000,
        elapsedS: round((performance.now() - startedAt) / 1_000),
        sent: counts.sent,
        answered: counts.answered,
        total,
        durationS,
        final: false,
      });
    }, intervalMs);

    await generator.finished;
    const sendS = (performance.now() - startedAt) / 1_000;
    settings.signal?.removeEventListener('abort', onAbort);
    // Everything Kafka acknowledged is answered, parked or, after a quiet spell, lost.
    const settleTimeoutMs = settings.settleTimeoutMs ?? 30_000;
    while (counts.answered + counts.deadLettered < counts.acked) {
      const quietFor = performance.now() - Math.max(lastAnswerAt, startedAt + sendS * 1_000);
      if (quietFor > settleTimeoutMs) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    clearInterval(clock);
    const end = Math.max(lastAnswerAt, startedAt + sendS * 1_000);
    const last = timeline.close(end, inFlight(), null);
    while (probing) await new Promise((resolve) => setTimeout(resolve, 10));
    await probeLag(last);
    const lastIntervalS = Math.max(1e-3, last.t - (timeline.points.at(-2)?.t ?? 0));
    settings.onTick?.({
      point: last,
      intervalS: lastIntervalS,
      elapsedS: round((end - startedAt) / 1_000),
      sent: counts.sent,
      answered: counts.answered,
      total,
      durationS,
      final: true,
    });
    const elapsedS = (end - startedAt) / 1_000;
    const unanswered = ledger.unanswered();
    keepTopics = unanswered.length > 0;
    const errors = counts.sendErrors + counts.deadLettered + counts.unknown + crashes.length;
    return {
      service: running.service,
      module: target.module,
      workers,
      partitions,
      size,
      keys,
      rate,
      maxInFlight,
      messages: 'messages' in limit ? limit.messages : null,
      durationLimitS: durationS,
      brokers,
      topics: { requests: names.requests, replies: names.replies, deadLetters: names.dlq, kept: keepTopics },
      startedAt: startedAtIso,
      elapsedS: round(elapsedS, 3),
      sendS: round(sendS, 3),
      sent: counts.sent,
      acked: counts.acked,
      answered: counts.answered,
      lost: unanswered.length,
      duplicates: counts.duplicates,
      deadLettered: counts.deadLettered,
      sendErrors: counts.sendErrors,
      unknownReplies: counts.unknown,
      errors,
      crashes,
      throughput: {
        sentPerSec: round(counts.sent / Math.max(sendS, 1e-3)),
        answeredPerSec: round(counts.answered / Math.max(elapsedS, 1e-3)),
      },
      warmupS: (settings.warmupMs ?? 0) / 1_000,
      latencyMs: timeline.summary(),
      lostSample: unanswered.slice(0, 20),
      aborted: settings.signal?.aborted ?? false,
      machine: { cpus: cpus().length, loadavg: loadavg().map((l) => round(l, 2)), node: process.version },
      timeline: timeline.points,
    };
  } finally {
    // Last in, first out: stop the traffic's ends before the service, the service before its topics.
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log.warn({ err: String(error) }, 'cleanup after the load run failed'));
    }
  }
}
