import kafkajs, { type Admin } from 'kafkajs';
import { UsageError } from '../../src/errors.js';
import { RECORD_OVERHEAD_BYTES } from './request.js';

// kafkajs is CommonJS: its enums are reached through the default export under ESM.
const { ConfigResourceTypes } = kafkajs;

/**
 * The largest record the cluster takes, asked of the brokers themselves (describeConfigs), so a
 * `--size` over it fails in one line before any traffic instead of as a stream of send errors.
 */
export interface SizeLimit {
  bytes: number;
  /** Where the limit comes from, for the error message: "message.max.bytes on broker 1". */
  source: string;
}

function entry(
  resources: Awaited<ReturnType<Admin['describeConfigs']>>['resources'],
  name: string,
  configName: string,
): number | undefined {
  const value = resources.find((r) => r.resourceName === name)?.configEntries.find((e) => e.configName === configName)?.configValue;
  return value === undefined || value === null ? undefined : Number(value);
}

/** The smallest of every broker's `message.max.bytes` and, for topics given, their `max.message.bytes`. */
export async function messageSizeLimit(admin: Admin, topics: readonly string[] = []): Promise<SizeLimit> {
  const { brokers } = await admin.describeCluster();
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      ...brokers.map((b) => ({ type: ConfigResourceTypes.BROKER, name: String(b.nodeId), configNames: ['message.max.bytes'] })),
      ...topics.map((topic) => ({ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] })),
    ],
  });
  const limits: SizeLimit[] = [
    ...brokers.map((b) => ({
      bytes: entry(resources, String(b.nodeId), 'message.max.bytes'),
      source: `message.max.bytes on broker ${b.nodeId}`,
    })),
    ...topics.map((topic) => ({ bytes: entry(resources, topic, 'max.message.bytes'), source: `max.message.bytes of topic ${topic}` })),
  ].filter((l): l is SizeLimit => Number.isFinite(l.bytes));
  if (limits.length === 0) return { bytes: Number.MAX_SAFE_INTEGER, source: 'no limit reported' };
  return limits.reduce((a, b) => (b.bytes < a.bytes ? b : a));
}

/** The largest `--size` a limit allows. */
export function largestRequestSize(limit: SizeLimit): number {
  return limit.bytes - RECORD_OVERHEAD_BYTES;
}

export function checkRequestSize(size: number, limit: SizeLimit): void {
  if (size <= largestRequestSize(limit)) return;
  throw new UsageError(
    `--size ${size} is over the broker's limit: the broker accepts records of at most ${limit.bytes} bytes (${limit.source}), ` +
      `and a request needs its size plus up to ${RECORD_OVERHEAD_BYTES} bytes for headers and the reply's fields. Use --size ${largestRequestSize(limit)} or less, or raise the limit.`,
  );
}
