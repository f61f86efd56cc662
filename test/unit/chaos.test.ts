import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recoveryAfter } from '../../scripts/load/chaos.js';
import type { TimelinePoint } from '../../scripts/load/timeline.js';
import { compiled } from '../../src/paths.js';

/** `npm run chaos` as users run it: a bad command line fails at once with exit 2, before any cluster starts. */
const home = mkdtempSync(join(tmpdir(), 'wharf-chaos-cli-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function wharf(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [compiled('scripts/chaos.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: home, WHARF_HOME: join(home, '.wharf'), WHARF_LOG_LEVEL: 'error', ...env },
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
}

describe('npm run chaos: bad flags', () => {
  it.each([
    [['--duration', '5'], /--duration must be a whole number from 10 to 86400; got "5"/],
    [['--broker-kills', '-1'], /--broker-kills must be a whole number from 0 to/],
    [['--rate', '0'], /--rate must be a whole number from 1 to/],
    [['--broker-kills', '9', '--duration', '60'], /--broker-kills 9 in --duration 60 leaves 6 s per kill, too little for --down 10/],
    [['--workers', '0'], /--workers must be a whole number from 1 to 64/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('%j is refused with one line', (args, message) => {
    const { code, stdout, stderr } = wharf(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')).toHaveLength(1);
  });

  it('refuses KAFKA_BROKERS that are not the local cluster it would kill brokers of', () => {
    const { code, stderr } = wharf([], { KAFKA_BROKERS: '127.0.0.1:1' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/KAFKA_BROKERS is 127\.0\.0\.1:1, not the local cluster in .*chaos kills brokers by signalling their processes/);
  });

  it('answers --help', () => {
    const { code, stdout } = wharf(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: npm run chaos -- \[flags\]/);
    expect(stdout).toContain('--broker-kills N');
  });
});

describe('recovery after a fault', () => {
  const point = (t: number, answered: number): TimelinePoint => ({
    t,
    sent: 100,
    answered,
    inFlight: 0,
    lag: null,
    p50: null,
    p99: null,
    max: null,
  });

  it('counts from the fault to the first second back at 90% of the rate, and the longest silence in between', () => {
    const points = [
      point(1, 100),
      point(2, 100),
      point(3, 40),
      point(4, 0),
      point(5, 0),
      point(6, 0),
      point(7, 60),
      point(8, 95),
      point(9, 100),
    ];
    expect(recoveryAfter(points, 2.5, 100)).toEqual({ recoveryS: 5.5, stallS: 3 });
  });

  it('says never when the rate did not come back within the run', () => {
    expect(recoveryAfter([point(1, 100), point(2, 0), point(3, 10)], 1.2, 100)).toEqual({ recoveryS: null, stallS: 1 });
  });
});
