import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import type { DeliveryCounters } from '../protocol.js';
import type { ServiceStatus, WorkerState, WorkerStatus } from '../status.js';
import { DEAD_LETTER_KEY_SEPARATOR, DURATION_BUCKETS, type HistogramData, type ThreadMetricsSnapshot } from '../thread-metrics.js';

/**
 * `/metrics`: the supervisor's view of every worker thread, as Prometheus text through
 * prom-client. prom-client's own aggregation covers `cluster` workers only; worker threads count
 * in plain numbers (src/thread-metrics.ts), ship snapshots with their heartbeats, and the
 * supervisor keeps each slot's totals across restarts (`WorkerMetrics`). This file only renders
 * them, at scrape time: nothing here runs per message. docs/observability.md lists every series.
 */
export interface WorkerMetrics {
  status: WorkerStatus;
  /** Since the slot first started: what its ended threads counted plus what its thread counts now. */
  thread: ThreadMetricsSnapshot;
  /** Counters summed over the slot's threads; gauges (in flight, paused, pending) of the live thread, 0 without one. */
  delivery: DeliveryCounters;
  /** The consumer group of the worker's service, when it consumes. */
  group: string | null;
}

/** One sample of a series family as prom-client formats it. */
export interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export interface MetricsSource {
  services(): ServiceStatus[];
  /** Every worker slot the supervisor ever ran, scaled-down ones included (their counters stay). */
  workers(): WorkerMetrics[];
  /** More families (consumer lag), rendered after the workers'. */
  extra?: () => SeriesFamily[];
}

export interface SeriesFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples(): Sample[];
}

export interface MetricsRegistry {
  readonly contentType: string;
  /** The Prometheus text of the deployment and of this process (event-loop lag, heap, GC). */
  text(): Promise<string>;
}

const WORKER_STATES: readonly WorkerState[] = ['starting', 'ready', 'draining', 'stopped', 'crashed'];

/** Default process metrics are the process's: collected once, whatever the number of supervisors in it. */
let processRegistry: Registry | undefined;

export function createMetricsRegistry(source: MetricsSource): MetricsRegistry {
  processRegistry ??= (() => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    return registry;
  })();
  const defaults = processRegistry;
  const registry = new Registry();
  let snapshot: WorkerMetrics[] = [];
  const families = workerFamilies(() => snapshot, source.services);
  for (const family of families) register(registry, family);
  let extras: SeriesFamily[] = [];
  // Families given by `extra` are rendered through a registry of their own each scrape (their names may come and go).
  return {
    contentType: Registry.PROMETHEUS_CONTENT_TYPE,
    async text() {
      snapshot = source.workers();
      extras = source.extra?.() ?? [];
      const more = new Registry();
      for (const family of extras) register(more, family);
      const parts = [await registry.metrics(), ...(extras.length > 0 ? [await more.metrics()] : []), await defaults.metrics()];
      // prom-client 15 writes a NaN sample as "Nan" (the event-loop lag's mean before its first
      // sample); the exposition format's spelling is "NaN", which strict parsers require.
      return parts.join('\n').replace(/ Nan$/gm, ' NaN');
    },
  };
}

function register(registry: Registry, family: SeriesFamily): void {
  const metric = {
    name: family.name,
    help: family.help,
    type: family.type,
    aggregator: 'sum',
    get: () => Promise.resolve({ name: family.name, help: family.help, type: family.type, aggregator: 'sum', values: family.samples() }),
  };
  registry.registerMetric(metric as unknown as Metric);
}

/** `name_bucket{le=…}` (cumulative), `name_sum` and `name_count` of one histogram. */
export function histogramSamples(name: string, labels: Record<string, string | number>, h: HistogramData): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  DURATION_BUCKETS.forEach((bound, i) => {
    cumulative += h.counts[i] ?? 0;
    samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
  });
  cumulative += h.counts[DURATION_BUCKETS.length] ?? 0;
  samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  samples.push({ metricName: `${name}_sum`, labels, value: h.sum });
  samples.push({ metricName: `${name}_count`, labels, value: cumulative });
  return samples;
}

function workerFamilies(workers: () => WorkerMetrics[], services: () => ServiceStatus[]): SeriesFamily[] {
  const who = (w: WorkerMetrics) => ({ service: w.status.service, worker: w.status.workerId });
  const consumerLabels = (w: WorkerMetrics, topic: string) => ({
    messaging_destination_name: topic,
    messaging_consumer_group_name: w.group ?? '',
    ...who(w),
  });
  const perWorker = (name: string, help: string, type: 'counter' | 'gauge', value: (w: WorkerMetrics) => number | null): SeriesFamily => ({
    name,
    help,
    type,
    samples: () =>
      workers().flatMap((w) => {
        const v = value(w);
        return v === null ? [] : [{ labels: who(w), value: v }];
      }),
  });
  const d = (key: keyof DeliveryCounters) => (w: WorkerMetrics) => w.delivery[key];
  const pool = (key: 'threads' | 'maxThreads' | 'utilization' | 'inFlight' | 'queued') => (w: WorkerMetrics) =>
    w.status.pool ? w.status.pool[key] : null;

  return [
    // ---- the OpenTelemetry messaging conventions, in Prometheus form
    {
      name: 'messaging_client_consumed_messages_total',
      help: 'Messages handed to a handler (first attempts), by topic (messaging.client.consumed.messages).',
      type: 'counter',
      samples: () =>
        workers().flatMap((w) => Object.entries(w.thread.consumed).map(([t, n]) => ({ labels: consumerLabels(w, t), value: n }))),
    },
    {
      name: 'messaging_process_duration_seconds',
      help: 'How long handler attempts took, by topic (messaging.process.duration).',
      type: 'histogram',
      samples: () =>
        workers().flatMap((w) =>
          Object.entries(w.thread.process).flatMap(([t, h]) =>
            histogramSamples('messaging_process_duration_seconds', consumerLabels(w, t), h),
          ),
        ),
    },
    {
      name: 'messaging_client_sent_messages_total',
      help: 'Messages sent and acknowledged by all in-sync replicas, by topic (messaging.client.sent.messages).',
      type: 'counter',
      samples: () =>
        workers().flatMap((w) =>
          Object.entries(w.thread.sent).map(([t, n]) => ({ labels: { messaging_destination_name: t, ...who(w) }, value: n })),
        ),
    },
    {
      name: 'messaging_client_operation_duration_seconds',
      help: 'How long send requests took until acknowledged, by topic (messaging.client.operation.duration, operation "send").',
      type: 'histogram',
      samples: () =>
        workers().flatMap((w) =>
          Object.entries(w.thread.send).flatMap(([t, h]) =>
            histogramSamples(
              'messaging_client_operation_duration_seconds',
              { messaging_operation_name: 'send', messaging_destination_name: t, ...who(w) },
              h,
            ),
          ),
        ),
    },
    // ---- workers and services
    {
      name: 'wharf_worker_state',
      help: "A worker slot's lifecycle state: 1 for the state it is in, 0 for the others.",
      type: 'gauge',
      samples: () =>
        workers().flatMap((w) =>
          WORKER_STATES.map((state) => ({ labels: { ...who(w), role: w.status.role, state }, value: w.status.state === state ? 1 : 0 })),
        ),
    },
    perWorker('wharf_worker_restarts_total', 'Threads started again in a worker slot after a crash.', 'counter', (w) => w.status.restarts),
    perWorker('wharf_worker_heap_used_bytes', "The worker thread's heap, from its last heartbeat.", 'gauge', (w) => w.status.heapUsedBytes),
    {
      name: 'wharf_service_health',
      help: "A service's health: 1 for the one it has (starting, healthy, degraded, failed, stopped), 0 for the others.",
      type: 'gauge',
      samples: () =>
        services().flatMap((s) =>
          (['starting', 'healthy', 'degraded', 'failed', 'stopped'] as const).map((health) => ({
            labels: { service: s.name, health },
            value: s.health === health ? 1 : 0,
          })),
        ),
    },
    // ---- delivery
    perWorker('wharf_handled_messages_total', 'Messages whose handler succeeded.', 'counter', d('handled')),
    perWorker('wharf_handler_errors_total', 'Handler attempts that threw.', 'counter', d('errors')),
    perWorker('wharf_retries_total', 'Handler attempts made again after a failure.', 'counter', d('retries')),
    {
      name: 'wharf_dead_letters_total',
      help: 'Messages parked in <topic>.dlq, by topic and reason (the error code; "none" without one).',
      type: 'counter',
      samples: () =>
        workers().flatMap((w) =>
          Object.entries(w.thread.deadLetters).map(([key, n]) => {
            const [topic, reason] = key.split(DEAD_LETTER_KEY_SEPARATOR) as [string, string];
            return { labels: { ...consumerLabels(w, topic), reason }, value: n };
          }),
        ),
    },
    perWorker('wharf_in_flight_messages', 'Messages fetched and not finished.', 'gauge', d('inFlight')),
    perWorker('wharf_paused_partitions', 'Partitions paused because their backlog is full (backpressure).', 'gauge', d('pausedPartitions')),
    perWorker('wharf_commits_total', 'Offset commits.', 'counter', d('commits')),
    perWorker('wharf_commit_failures_total', 'Offset commits that failed (retried with the next one).', 'counter', d('commitFailures')),
    perWorker('wharf_rebalances_total', 'Consumer-group rebalances the worker went through.', 'counter', d('rebalances')),
    // ---- request/reply
    perWorker('wharf_requests_total', 'ctx.request calls.', 'counter', d('requests')),
    perWorker('wharf_request_timeouts_total', 'ctx.request calls that timed out.', 'counter', d('timeouts')),
    perWorker('wharf_request_late_replies_total', 'Replies that came after their request timed out.', 'counter', d('lateReplies')),
    perWorker('wharf_requests_pending', 'ctx.request calls waiting for their reply.', 'gauge', d('pendingRequests')),
    // ---- shared state
    {
      name: 'wharf_state_calls_total',
      help: 'Shared-state calls from worker threads, by operation (kind.op).',
      type: 'counter',
      samples: () =>
        workers().flatMap((w) =>
          Object.entries(w.thread.stateCalls).map(([operation, n]) => ({ labels: { ...who(w), operation }, value: n })),
        ),
    },
    {
      name: 'wharf_state_call_duration_seconds',
      help: 'How long shared-state calls took, from the call to its answer.',
      type: 'histogram',
      samples: () =>
        workers()
          .filter((w) => Object.keys(w.thread.stateCalls).length > 0)
          .flatMap((w) => histogramSamples('wharf_state_call_duration_seconds', who(w), w.thread.stateCallDuration)),
    },
    // ---- thread pools (consumes.concurrency)
    perWorker('wharf_pool_threads', 'Pool threads set up and taking tasks.', 'gauge', pool('threads')),
    perWorker('wharf_pool_max_threads', 'The pool size asked for.', 'gauge', pool('maxThreads')),
    perWorker(
      'wharf_pool_utilization_ratio',
      'Busy time / (threads × wall time) over the last second, 0..1.',
      'gauge',
      pool('utilization'),
    ),
    perWorker('wharf_pool_in_flight_messages', 'Messages taken by the pool and not finished.', 'gauge', pool('inFlight')),
    perWorker('wharf_pool_queued_messages', 'Messages free to run, waiting for a pool thread.', 'gauge', pool('queued')),
  ];
}
