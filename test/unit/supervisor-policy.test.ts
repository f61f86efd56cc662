import { describe, expect, it } from 'vitest';
import { assertTransition, canTransition, IllegalTransitionError } from '../../src/supervisor/lifecycle.js';
import { createRestartPolicy } from '../../src/supervisor/restart-policy.js';

describe('worker lifecycle', () => {
  it('allows the normal path and restarts', () => {
    for (const [from, to] of [
      ['stopped', 'starting'],
      ['starting', 'ready'],
      ['ready', 'draining'],
      ['draining', 'stopped'],
      ['ready', 'crashed'],
      ['crashed', 'starting'],
      ['crashed', 'stopped'],
    ] as const) {
      expect(canTransition(from, to), `${from} → ${to}`).toBe(true);
    }
  });

  it('rejects illegal transitions with a message that names them', () => {
    expect(() => assertTransition('tony/consumer/0', 'stopped', 'ready')).toThrow(IllegalTransitionError);
    expect(() => assertTransition('tony/consumer/0', 'draining', 'ready')).toThrow(
      'Cannot move worker tony/consumer/0 from draining to ready: allowed from draining is stopped, crashed.',
    );
    expect(canTransition('stopped', 'crashed')).toBe(false);
    expect(canTransition('ready', 'starting')).toBe(false);
  });
});

describe('restart policy', () => {
  const settings = { initialDelayMs: 100, maxDelayMs: 1_000, maxRestarts: 3, windowMs: 10_000 };

  it('backs off exponentially with jitter, capped', () => {
    const low = createRestartPolicy({ ...settings, maxRestarts: 10 }, () => 0);
    const high = createRestartPolicy({ ...settings, maxRestarts: 10 }, () => 1);
    const lows = [0, 1, 2, 3, 4, 5].map((i) => low.onCrash(i));
    const highs = [0, 1, 2, 3, 4, 5].map((i) => high.onCrash(i));
    expect(lows.map((d) => d.action === 'restart' && d.delayMs)).toEqual([50, 100, 200, 400, 500, 500]);
    expect(highs.map((d) => d.action === 'restart' && d.delayMs)).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('gives up after maxRestarts crashes within the window, with the reason', () => {
    const policy = createRestartPolicy(settings, () => 0.5);
    expect(policy.onCrash(0).action).toBe('restart');
    expect(policy.onCrash(1).action).toBe('restart');
    expect(policy.onCrash(2).action).toBe('restart');
    expect(policy.onCrash(3)).toEqual({ action: 'give-up', reason: 'crashed 4 times within 10000 ms (limit 3 restarts)' });
  });

  it('forgets crashes older than the window', () => {
    const policy = createRestartPolicy(settings, () => 0.5);
    for (const at of [0, 1, 2]) policy.onCrash(at);
    const decision = policy.onCrash(20_000);
    expect(decision).toMatchObject({ action: 'restart', attempt: 1 });
  });
});
