import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compiled } from '../../src/paths.js';

/**
 * `npm run load` and `npm run bench` as users run them (the built CLI). KAFKA_BROKERS points at a
 * port nothing listens on: a flag error must be reported before any broker is contacted, so each
 * of these fails fast with exit 2, never with a connection error.
 */
const home = mkdtempSync(join(tmpdir(), 'wharf-load-cli-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** `npm run load|bench -- args`: the entries package.json runs. */
const ENTRIES = { load: 'scripts/load.js', bench: 'scripts/bench/run.js' } as const;

function wharf([command, ...args]: [keyof typeof ENTRIES, ...string[]]) {
  const result = spawnSync(process.execPath, [compiled(ENTRIES[command]), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: home, WHARF_HOME: join(home, '.wharf'), KAFKA_BROKERS: '127.0.0.1:1', WHARF_LOG_LEVEL: 'error' },
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
}

describe('npm run load: bad flags', () => {
  it.each([
    [['--rate', '-5'], /--rate must be a number of messages per second above 0 \(at most 1000000\); got "-5"/],
    [['--rate', '0'], /--rate must be a number of messages per second above 0/],
    [['--rate', 'fast'], /--rate must be a number of messages per second above 0/],
    [['--messages', '1000', '--duration', '10'], /--messages and --duration cannot be used together/],
    [['--messages', '0'], /--messages must be a whole number from 1 to/],
    [['--messages', '1.5'], /--messages must be a whole number/],
    [['--duration', '-1'], /--duration must be a number of seconds above 0/],
    [['--size', '10'], /--size must be a whole number from 128 to/],
    [['--size', '-1024'], /--size must be a whole number from 128 to/],
    [['--keys', '-1'], /--keys must be a whole number from 0 to/],
    [['--workers', '0'], /--workers must be a whole number from 1 to 64/],
    [['--workers', '65'], /--workers must be a whole number from 1 to 64/],
    [['--in-flight', '0'], /--in-flight must be a whole number from 1 to/],
    [['--wait', '0'], /--wait must be a number of seconds above 0/],
    [['--warmup', '-1'], /--warmup must be a number of seconds from 0 to 3600; got "-1"/],
    [['--warmup', 'soon'], /--warmup must be a number of seconds from 0 to 3600/],
    [['--duration', '5', '--warmup', '5'], /--warmup 5 leaves nothing of a --duration 5 run to measure/],
    [['--service', 'ultron'], /Unknown service "ultron": use jarvis or echo, or the path of a compiled service module/],
    [['--service', './missing.js'], /Unknown service "\.\/missing\.js" \(no file .*missing\.js\)/],
    [['--bogus'], /Unknown option '--bogus' for `npm run load`/],
    [['extra'], /Unexpected argument .extra./],
  ])('load %j fails with one clear line and exit 2', (args, message) => {
    const { code, stdout, stderr } = wharf(['load', ...args]);
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(code).toBe(2);
    expect(stdout).toBe('');
  });

  it('prints its help with --help', () => {
    const { code, stdout } = wharf(['load', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--messages N');
    expect(stdout).toContain('--report FILE');
  });
});

describe('npm run bench: bad flags', () => {
  it.each([
    [
      ['--only', 'everything'],
      /--only takes sections from consume, scaling, pool, state, roundtrip, capacity, python, cluster; got "everything"/,
    ],
    [['--only', 'consume,nope'], /--only takes sections from/],
    [['--reps', '0'], /--reps must be a whole number from 1 to 50/],
    [['--quick', 'now'], /Unexpected argument .now./],
  ])('bench %j fails with one clear line and exit 2', (args, message) => {
    const { code, stderr } = wharf(['bench', ...args]);
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(code).toBe(2);
  });
});
