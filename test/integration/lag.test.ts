import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startWharf } from '../../src/app/start.js';
import { parseConfig } from '../../src/config/load.js';
import type { LagReport } from '../../src/metrics/lag-monitor.js';
import { createTopic, kafkaForTest, runAdminIn, SERVICE_MODULES, testBrokers, testLogger, uniqueName, waitFor } from '../helpers.js';
import { parsePrometheusText } from '../prometheus-text.js';

/**
 * Consumer lag read from Kafka by a running supervisor: after its only consumer is gone (a
 * crash with no restarts allowed: the service failed), `npm run admin -- lag --json` shows the
 * messages produced since as lag, the group judged STOP (no member, offset not moving), and
 * /metrics shows the same numbers.
 */
const admin = (home: string, ...args: string[]) => runAdminIn(home, args);

describe('consumer lag', () => {
  it('shows with the consumer stopped, in admin lag and /metrics alike', { timeout: 120_000 }, async () => {
    const k = kafkaForTest();
    const input = await createTopic(await k.admin(), uniqueName('lag-in'), 2);
    const forward = await createTopic(await k.admin(), uniqueName('lag-out'), 1);
    const group = uniqueName('lagging');
    const home = mkdtempSync(join(tmpdir(), 'wharf-lag-'));
    const logger = testLogger();
    const wharf = await startWharf({
      config: parseConfig(
        {
          services: [
            {
              module: SERVICE_MODULES.fixture('metered'),
              consumes: { topics: [input], groupId: group, retry: { attempts: 1 } },
              options: { forward },
            },
          ],
          // One crash and the service is given up on: its consumer stays down.
          supervisor: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 3_000, drainTimeoutMs: 15_000, restart: { maxRestarts: 0 } },
          kafka: { sessionTimeoutMs: 6_000, clientId: uniqueName('wharf') },
        },
        'test',
        process.cwd(),
      ),
      brokers: testBrokers(),
      logger,
      env: {},
      admin: { dir: home },
      http: { host: '127.0.0.1', port: 0 },
      lag: { intervalMs: 250, samples: 4 },
      print: (line) => logger.debug(line),
    });
    onTestFinished(async () => {
      await wharf.stop();
      rmSync(home, { recursive: true, force: true });
    });

    const producer = await k.producer();
    await producer.send({
      topic: input,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }) })),
    });
    const lag = async () => {
      const { code, stdout, stderr } = await admin(home, 'lag', '--json');
      expect([code, stderr]).toEqual([0, '']);
      return JSON.parse(stdout) as LagReport;
    };
    const caughtUp = await waitFor(
      async () => {
        const report = await lag();
        return report.groups[0]?.partitions.every((p) => p.committed !== null && p.lag === 0) ? report : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(caughtUp.groups.map((g) => [g.group, g.topics, g.status, g.lag])).toEqual([[group, [input], 'OK', 0]]);
    expect(caughtUp.groups[0]!.partitions.map((p) => p.partition)).toEqual([0, 1]);
    expect(caughtUp.groups[0]!.partitions.reduce((sum, p) => sum + p.end, 0)).toBe(10);

    // The consumer goes (a crash, no restart), then 7 more messages arrive.
    const failed = wharf.supervisor.events.once('service:failed');
    await wharf.store.local.value('fault').set('throw');
    await producer.send({ topic: input, acks: -1, messages: [{ partition: 0, value: JSON.stringify({ crash: true }) }] });
    await failed;
    await producer.send({
      topic: input,
      acks: -1,
      messages: Array.from({ length: 7 }, (_, i) => ({ partition: i % 2, value: JSON.stringify({ i }) })),
    });

    const stopped = await waitFor(
      async () => {
        const report = await lag();
        return report.groups[0]!.status === 'STOP' ? report : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const g = stopped.groups[0]!;
    // The crash message may or may not have been committed before the thread ended.
    expect(g.lag).toBeGreaterThanOrEqual(7);
    expect(g.lag).toBeLessThanOrEqual(8);
    expect(g.members).toBe(0);
    for (const p of g.partitions) expect(p.lag).toBe(p.end - p.committed!);

    // /metrics reads the same report.
    const text = await (await fetch(`${wharf.http!.url}/metrics`)).text();
    const scrape = parsePrometheusText(text);
    const latest = await lag();
    for (const p of latest.groups[0]!.partitions) {
      const where = {
        messaging_consumer_group_name: group,
        messaging_destination_name: input,
        messaging_destination_partition_id: String(p.partition),
      };
      expect(scrape.sum('wharf_consumer_lag', where)).toBe(p.lag);
      expect(scrape.sum('wharf_consumer_end_offset', where)).toBe(p.end);
      expect(scrape.sum('wharf_consumer_lag_status', { ...where, status: 'STOP' })).toBe(p.status === 'STOP' ? 1 : 0);
    }
    expect(scrape.sum('wharf_consumer_group_lag', { messaging_consumer_group_name: group })).toBe(latest.groups[0]!.lag);
    expect(scrape.sum('wharf_consumer_group_lag_status', { messaging_consumer_group_name: group, status: 'STOP' })).toBe(1);

    // The table for people, and a flag that does not belong.
    const table = await admin(home, 'lag');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`${group}: STOP, lag ${latest.groups[0]!.lag}, 0 members`);
    expect(table.stdout).toMatch(/TOPIC\s+PARTITION\s+COMMITTED\s+END\s+LAG\s+STATUS/);
    const wrong = await admin(home, 'lag', '--limit', '3');
    expect([wrong.code, wrong.stderr]).toEqual([2, expect.stringContaining('--limit does not apply to `admin lag`') as unknown]);
  });
});
