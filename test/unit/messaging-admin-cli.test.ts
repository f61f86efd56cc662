import { describe, expect, it, onTestFinished } from 'vitest';
import { deadLetterMethods, type DeadLetterAdmin, type DeadLetterEntry } from '../../src/admin/dead-letter.js';
import { startAdminServer } from '../../src/admin/server.js';
import { runAdmin } from '../admin-cli.js';
import { memoryApi, silentLogger, tempDir } from './admin/fixtures.js';

const admin = runAdmin;

const entry: DeadLetterEntry = {
  id: 'orders.dlq/0/3',
  dlqTopic: 'orders.dlq',
  partition: 0,
  offset: '3',
  topic: 'orders',
  originalPartition: 2,
  originalOffset: '41',
  code: 'ERR_SCHEMA',
  reason: 'value fails the schema: total: expected number',
  attempts: 0,
  at: '2026-01-02T03:04:05.000Z',
  key: 'o-7',
  bytes: 12,
  valueDropped: false,
  replayedAt: null,
};

/** A supervisor stand-in serving `dlq.*` from canned answers, the params it got recorded. */
async function supervisor() {
  const calls: { method: string; params: unknown }[] = [];
  const fake = {
    list: async (params: unknown) => (
      calls.push({ method: 'list', params }),
      { entries: [entry], topics: [{ topic: 'orders.dlq', count: 5 }] }
    ),
    show: async (params: unknown) => (
      calls.push({ method: 'show', params }),
      { ...entry, headers: { 'message-id': 'm-1' }, errorName: 'SchemaError', stack: '', value: '{"total":"x"}', valueEncoding: 'utf8' }
    ),
    replay: async (params: unknown) => (
      calls.push({ method: 'replay', params }),
      {
        replayed: [{ id: entry.id, topic: 'orders' }],
        skipped: [{ id: 'orders.dlq/0/4', reason: 'replayed already at 2026-01-02T03:04:06.000Z' }],
      }
    ),
  } as unknown as DeadLetterAdmin;
  const home = tempDir();
  const server = await startAdminServer({
    api: { ...memoryApi().api, extra: deadLetterMethods(fake) },
    dir: home,
    logger: silentLogger,
    env: {},
  });
  onTestFinished(() => server.close());
  return { calls, env: { WHARF_HOME: home } as NodeJS.ProcessEnv };
}

describe('npm run admin -- dlq', () => {
  it('lists, shows and replays for people', async () => {
    const { env, calls } = await supervisor();
    const list = await admin(['dlq', 'list', 'orders', '--limit', '20'], env);
    expect(list).toMatchObject({ code: 0, stderr: '' });
    expect(list.stdout).toBe(
      'orders.dlq: 5 dead letters (the last 1 shown)\n\n' +
        'ID              FROM         CODE        ATTEMPTS  AT                        REPLAYED  REASON\n' +
        'orders.dlq/0/3  orders/2/41  ERR_SCHEMA  0         2026-01-02T03:04:05.000Z  -         value fails the schema: total: expected number\n',
    );
    const show = await admin(['dlq', 'show', 'orders.dlq/0/3'], env);
    expect(show.stdout).toContain(
      '  from       orders partition 2 offset 41\n  reason     ERR_SCHEMA: value fails the schema: total: expected number\n',
    );
    expect(show.stdout).toContain('  headers    message-id=m-1\n  value      {"total":"x"}\n');
    const replay = await admin(['dlq', 'replay', 'orders.dlq/0/3', 'orders.dlq/0/4'], env);
    expect(replay.stdout).toBe('replayed 1 dead letter to orders\nskipped orders.dlq/0/4: replayed already at 2026-01-02T03:04:06.000Z\n');
    expect(calls).toEqual([
      { method: 'list', params: { topic: 'orders', limit: 20 } },
      { method: 'show', params: { id: 'orders.dlq/0/3' } },
      { method: 'replay', params: { ids: ['orders.dlq/0/3', 'orders.dlq/0/4'] } },
    ]);
  });

  it('prints one JSON object with --json', async () => {
    const { env, calls } = await supervisor();
    const replay = await admin(['dlq', 'replay', 'orders', '--all', '--json'], env);
    expect(replay.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(replay.stdout).replayed).toEqual([{ id: entry.id, topic: 'orders' }]);
    expect(calls).toEqual([{ method: 'replay', params: { topic: 'orders', all: true } }]);
  });

  it.each([
    [['dlq'], /^wharf: Usage: npm run admin -- dlq list \[topic\]/],
    [['dlq', 'purge'], /^wharf: Usage: npm run admin -- dlq list \[topic\]/],
    [
      ['dlq', 'show', 'orders'],
      /^wharf: "orders" is not a dead-letter id: use <dlq-topic>\/<partition>\/<offset> as `npm run admin -- dlq list` prints it\.$/,
    ],
    [
      ['dlq', 'replay'],
      /^wharf: Say which dead letters to replay: dlq replay <id>\.\.\. \(ids from `dlq list`\), or dlq replay <topic> --all\.$/,
    ],
    [['dlq', 'replay', 'a.dlq/0/1', 'b.dlq/0/2'], /^wharf: Replay the dead letters of one topic at a time\.$/],
    [
      ['dlq', 'replay', 'a.dlq/0/1', '--all'],
      /^wharf: Usage: npm run admin -- dlq replay <topic> --all \(a topic, not dead-letter ids\)\.$/,
    ],
    [['dlq', 'list', '--all'], /^wharf: --all applies to `dlq replay <topic> --all` only\.$/],
    [['dlq', 'show', 'a.dlq/0/1', '--limit', '3'], /^wharf: --limit applies to `dlq list` only\.$/],
    [['dlq', 'list', '--limit', '0'], /^wharf: --limit must be a whole number from 1 to 10000; got "0"\.$/],
    [['state', '--limit', '3'], /^wharf: --limit does not apply to `admin state`/],
  ])('%j is a usage error, found before connecting', async (args, message) => {
    // No supervisor in this folder: a usage error must come first.
    const result = await admin(args, { WHARF_HOME: tempDir() });
    expect(result).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(message) });
  });

  it('the supervisor checks the params of dlq.* methods too', async () => {
    const methods = deadLetterMethods({} as DeadLetterAdmin);
    await expect(methods['dlq.list']!({ limit: 0 })).rejects.toMatchObject({
      code: 'ERR_BAD_PARAMS',
      message: expect.stringMatching(/^dlq\.list: limit: /),
    });
    await expect(methods['dlq.show']!({ id: 'x', extra: 1 })).rejects.toMatchObject({ code: 'ERR_BAD_PARAMS' });
    await expect(methods['dlq.replay']!({ ids: 'all' })).rejects.toMatchObject({
      code: 'ERR_BAD_PARAMS',
      message: expect.stringMatching(/^dlq\.replay: ids: /),
    });
  });
});
