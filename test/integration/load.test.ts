import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { compiled } from '../../src/paths.js';
import type { LoadResult } from '../../scripts/load/run.js';
import { kafkaForTest, SERVICE_MODULES, testBrokers } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `npm run load` as users run it: the built CLI on the run's broker. */
function load(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [compiled('scripts/load.js'), ...args], {
    cwd: dir,
    env: { ...process.env, KAFKA_BROKERS: testBrokers().join(','), WHARF_HOME: join(dir, '.wharf'), WHARF_LOG_LEVEL: 'warn' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  onTestFinished(() => void child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`load ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${stderr.slice(-3_000)}`)),
      timeoutMs,
    );
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** --json: exactly one JSON object on stdout, nothing else. */
function onlyJson(stdout: string): LoadResult & { report: string | null } {
  const lines = stdout.split('\n').filter(Boolean);
  expect(lines, `stdout was:\n${stdout.slice(0, 2_000)}`).toHaveLength(1);
  return JSON.parse(lines[0]!);
}

async function topicsLeft(names: string[]): Promise<string[]> {
  const existing = new Set(await (await kafkaForTest().admin()).listTopics());
  return names.filter((name) => existing.has(name));
}

describe('npm run load', () => {
  it('sends 2,000 requests through Jarvis, loses none, and writes a report with its charts', { timeout: 150_000 }, async () => {
    const report = join(dir, 'reports', 'jarvis.html');
    const { code, stdout, stderr } = await load(['--messages', '2000', '--json', '--report', report]);
    expect(code, stderr).toBe(0);
    const result = onlyJson(stdout);
    expect(result).toMatchObject({
      service: 'jarvis',
      workers: 2,
      sent: 2_000,
      acked: 2_000,
      answered: 2_000,
      lost: 0,
      deadLettered: 0,
      sendErrors: 0,
      unknownReplies: 0,
      report,
    });
    // Requests go through an idempotent producer to a group that was stable before the first
    // send; with no worker crashing, nothing is redelivered, so no request is answered twice.
    expect(result.crashes).toEqual([]);
    expect(result.duplicates, 'requests answered twice').toBe(0);
    const l = result.latencyMs;
    expect(l.count).toBe(2_000);
    expect(
      0 < l.min! && l.min! <= l.p50! && l.p50! <= l.p90! && l.p90! <= l.p99! && l.p99! <= l.p999! && l.p999! <= l.max!,
      JSON.stringify(l),
    ).toBe(true);
    expect(result.throughput.answeredPerSec).toBeGreaterThan(0);
    expect(result.timeline.length).toBeGreaterThan(0);
    expect(result.timeline.reduce((sum, p) => sum + p.answered, 0)).toBe(2_000);
    expect(result.timeline.reduce((sum, p) => sum + p.sent, 0)).toBe(2_000);
    // Progress went to stderr (at least its final line), never to stdout.
    expect(stderr).toMatch(/load: 2,000\/2,000 answered/);

    expect(existsSync(report)).toBe(true);
    const html = readFileSync(report, 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(3);
    // A line through the per-second points; a run over within its first interval is one point.
    if (result.timeline.length > 1) expect(html).toMatch(/<polyline points="[^"]+" [^>]*data-series="answered"/);
    else expect(html).toMatch(/<circle [^>]*data-series="answered"/);
    const embedded = JSON.parse(/<script type="application\/json" id="load-result">(.*)<\/script>/s.exec(html)![1]!);
    const { report: _report, ...printed } = result;
    expect(embedded).toEqual(printed);

    // The run's topics are its own, and gone afterwards.
    expect(result.topics.kept).toBe(false);
    expect(await topicsLeft([result.topics.requests, result.topics.replies, result.topics.deadLetters])).toEqual([]);
  });

  it('holds a scheduled --rate with the echo service and 1 KB requests, after a warm-up', { timeout: 150_000 }, async () => {
    const { code, stdout, stderr } = await load([
      '--service',
      'echo',
      '--messages',
      '600',
      '--rate',
      '400',
      '--size',
      '1024',
      '--workers',
      '1',
      '--warmup',
      '0.5',
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    const result = onlyJson(stdout);
    expect(result).toMatchObject({ service: 'echo', size: 1_024, rate: 400, answered: 600, lost: 0, maxInFlight: null, warmupS: 0.5 });
    // The 200 requests due in the first 0.5 s are answered and counted, but not in the percentiles.
    expect(result.latencyMs.count).toBe(400);
    // 600 requests at 400/s: the last is due 1.5 s after the first; sending faster means the schedule was not kept.
    expect(result.sendS).toBeGreaterThan(1.4);
    expect(result.throughput.sentPerSec).toBeLessThan(440);
  });

  it('refuses a --size over the broker limit it asked the broker for, before sending anything', { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await load(['--size', '2000000', '--json']);
    const line = stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('wharf:'));
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(
      /--size 2000000 is over the broker's limit: the broker accepts records of at most \d+ bytes \(message\.max\.bytes on broker \d+\).*Use --size \d+ or less/,
    );
    expect(code).toBe(2);
    expect(stdout).toBe('');
  });

  it('exits 1 and keeps the topics when a service never answers', { timeout: 120_000 }, async () => {
    // The fixture records what it handles but never replies: every request is lost.
    const { code, stdout, stderr } = await load([
      '--service',
      SERVICE_MODULES.fixture('echo'),
      '--messages',
      '50',
      '--workers',
      '1',
      '--wait',
      '2',
      '--json',
    ]);
    expect(code).toBe(1);
    const result = onlyJson(stdout);
    expect(result).toMatchObject({ acked: 50, answered: 0, lost: 50 });
    expect(result.lostSample).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(stderr).toMatch(/wharf: lost 50 of 50 requests Kafka acknowledged .* Does the service answer every request with ctx\.reply\?/);
    expect(result.topics.kept).toBe(true);
    expect(await topicsLeft([result.topics.requests])).toEqual([result.topics.requests]);
    await (
      await kafkaForTest().admin()
    ).deleteTopics({ topics: [result.topics.requests, result.topics.replies, result.topics.deadLetters] });
  });
});
