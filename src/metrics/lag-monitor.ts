import type { Admin } from 'kafkajs';
import { describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import type { Logger } from '../log.js';
import { LAG_STATUSES, lagStatus, worstStatus, type LagSample, type LagStatus } from './lag-status.js';
import type { SeriesFamily } from './registry.js';

/**
 * Consumer lag as operators read it: for every group the deployment consumes, the committed
 * offset against the log end of each partition, read from Kafka with an admin client (so lag
 * shows while the consumers are down), sampled every `intervalMs`, each partition judged over
 * the last `samples` samples (lag-status.ts). `npm run admin -- lag` and `/metrics` read the same
 * report.
 */
export interface LagPartition {
  topic: string;
  partition: number;
  /** The next offset the group will read; null before its first commit. */
  committed: number | null;
  /** The log end offset (high watermark). */
  end: number;
  /** end − committed; before a first commit, what the log holds (end − log start). */
  lag: number;
  status: LagStatus;
}

export interface LagGroup {
  group: string;
  topics: string[];
  /** Kafka's state of the group (Stable, Empty, PreparingRebalance…); "Unknown" when it could not be read. */
  state: string;
  members: number;
  /** Its partitions' lag, summed. */
  lag: number;
  /** Its worst partition's status. */
  status: LagStatus;
  partitions: LagPartition[];
}

export interface LagReport {
  at: string;
  window: { samples: number; intervalMs: number; stopAfterMs: number };
  groups: LagGroup[];
}

export interface LagMonitorOptions {
  brokers: string[];
  clientId: string;
  /** The groups the deployment consumes and their topics. */
  groups: { group: string; topics: string[] }[];
  logger: Logger;
  /** Default 10 s. */
  intervalMs?: number;
  /** Samples in a window (Burrow's default: 10). */
  samples?: number;
  /** Default: 3 windows. */
  stopAfterMs?: number;
}

export interface LagMonitor {
  /** The latest report, read now when the last one is older than half an interval. */
  report(): Promise<LagReport>;
  /** The latest report without reading Kafka (undefined before the first). */
  latest(): LagReport | undefined;
  stop(): Promise<void>;
}

interface PartitionHistory {
  samples: LagSample[];
  movedAt: number;
}

export function startLagMonitor({
  brokers,
  clientId,
  groups,
  logger: parent,
  intervalMs = 10_000,
  samples = 10,
  stopAfterMs = 3 * samples * intervalMs,
}: LagMonitorOptions): LagMonitor {
  const logger = parent.child({ component: 'lag' });
  const window = { samples, intervalMs, stopAfterMs };
  const history = new Map<string, PartitionHistory>();
  let admin: Admin | undefined;
  let latest: LagReport | undefined;
  let sampling: Promise<LagReport> | undefined;
  let stopped = false;
  let failing = false;

  async function connected(): Promise<Admin> {
    if (!admin) {
      const fresh = createKafka({ brokers, logger, clientId: `${clientId}-lag` }).admin();
      await fresh.connect();
      admin = fresh;
    }
    return admin;
  }

  async function read(): Promise<LagReport> {
    const client = await connected();
    const now = Date.now();
    const described = groups.length > 0 ? await client.describeGroups(groups.map((g) => g.group)) : { groups: [] };
    const topics = [...new Set(groups.flatMap((g) => g.topics))];
    const ends = new Map(await Promise.all(topics.map(async (t) => [t, await client.fetchTopicOffsets(t)] as const)));
    const report: LagGroup[] = [];
    for (const { group, topics: mine } of groups) {
      const info = described.groups.find((d) => d.groupId === group);
      const members = info?.members.length ?? 0;
      const committed = await client.fetchOffsets({ groupId: group, topics: mine });
      const partitions: LagPartition[] = [];
      for (const topic of mine) {
        for (const end of ends.get(topic) ?? []) {
          const at = committed.find((c) => c.topic === topic)?.partitions.find((p) => p.partition === end.partition);
          const offset = at && Number(at.offset) >= 0 ? Number(at.offset) : null;
          const high = Number(end.high);
          const lag = offset === null ? Math.max(0, high - Number(end.low)) : Math.max(0, high - offset);
          const key = `${group}\u0000${topic}\u0000${end.partition}`;
          const h = history.get(key) ?? { samples: [], movedAt: now };
          const previous = h.samples.at(-1);
          if (previous && previous.committed !== offset) h.movedAt = now;
          h.samples.push({ at: now, committed: offset, end: high, lag, members });
          if (h.samples.length > samples) h.samples.shift();
          history.set(key, h);
          partitions.push({
            topic,
            partition: end.partition,
            committed: offset,
            end: high,
            lag,
            status: lagStatus(h.samples, h.movedAt, window, now),
          });
        }
      }
      partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
      report.push({
        group,
        topics: mine,
        state: info?.state ?? 'Unknown',
        members,
        lag: partitions.reduce((sum, p) => sum + p.lag, 0),
        status: worstStatus(partitions.map((p) => p.status)),
        partitions,
      });
    }
    return { at: new Date(now).toISOString(), window, groups: report };
  }

  function sample(): Promise<LagReport> {
    sampling ??= read()
      .then((report) => {
        latest = report;
        if (failing) logger.info('consumer lag: reading offsets again');
        failing = false;
        return report;
      })
      .catch((error: unknown) => {
        // The broker may be restarting: one line, and the next interval tries again.
        if (!failing) logger.warn({ err: describeError(error) }, 'consumer lag: cannot read offsets (trying again)');
        failing = true;
        throw error;
      })
      .finally(() => (sampling = undefined));
    return sampling;
  }

  const timer = setInterval(() => {
    if (!stopped) sample().catch(() => undefined);
  }, intervalMs);
  // The first sample waits an interval: at start the supervisor is still creating the topics.
  timer.unref();

  return {
    latest: () => latest,
    async report() {
      if (latest && Date.now() - Date.parse(latest.at) < intervalMs / 2) return latest;
      return sample();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await sampling?.catch(() => undefined);
      await admin?.disconnect().catch(() => undefined);
    },
  };
}

/** The report as Prometheus series: lag and offsets per partition, the status as a 0/1 gauge per status, per group too. */
export function lagFamilies(report: LagReport | undefined): SeriesFamily[] {
  const groups = report?.groups ?? [];
  const where = (g: LagGroup, p: LagPartition) => ({
    messaging_consumer_group_name: g.group,
    messaging_destination_name: p.topic,
    messaging_destination_partition_id: String(p.partition),
  });
  const perPartition = (value: (p: LagPartition) => number | null) => () =>
    groups.flatMap((g) =>
      g.partitions.flatMap((p) => {
        const v = value(p);
        return v === null ? [] : [{ labels: where(g, p), value: v }];
      }),
    );
  return [
    {
      name: 'wharf_consumer_lag',
      help: 'Messages behind the log end: end offset − committed offset, read from Kafka.',
      type: 'gauge',
      samples: perPartition((p) => p.lag),
    },
    {
      name: 'wharf_consumer_committed_offset',
      help: "The group's committed offset (absent before its first commit).",
      type: 'gauge',
      samples: perPartition((p) => p.committed),
    },
    {
      name: 'wharf_consumer_end_offset',
      help: "The partition's log end offset (high watermark).",
      type: 'gauge',
      samples: perPartition((p) => p.end),
    },
    {
      name: 'wharf_consumer_lag_status',
      help: "A partition's lag status over the window (OK, WARN, REWIND, STALL, STOP): 1 for its status, 0 for the others.",
      type: 'gauge',
      samples: () =>
        groups.flatMap((g) =>
          g.partitions.flatMap((p) =>
            LAG_STATUSES.map((status) => ({ labels: { ...where(g, p), status }, value: p.status === status ? 1 : 0 })),
          ),
        ),
    },
    {
      name: 'wharf_consumer_group_lag',
      help: "A group's lag, all its partitions.",
      type: 'gauge',
      samples: () => groups.map((g) => ({ labels: { messaging_consumer_group_name: g.group }, value: g.lag })),
    },
    {
      name: 'wharf_consumer_group_lag_status',
      help: "A group's worst partition status: 1 for it, 0 for the others.",
      type: 'gauge',
      samples: () =>
        groups.flatMap((g) =>
          LAG_STATUSES.map((status) => ({
            labels: { messaging_consumer_group_name: g.group, status },
            value: g.status === status ? 1 : 0,
          })),
        ),
    },
  ];
}
