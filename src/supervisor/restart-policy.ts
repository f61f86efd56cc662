/**
 * When to restart a crashed worker, and when to give up on its service: exponential backoff with
 * jitter, and a crash loop — more than `maxRestarts` crashes of one service within `windowMs` —
 * ends in giving up, so a broken service cannot burn the machine while others run.
 */
export interface RestartSettings {
  initialDelayMs: number;
  maxDelayMs: number;
  maxRestarts: number;
  windowMs: number;
}

export type RestartDecision = { action: 'restart'; delayMs: number; attempt: number } | { action: 'give-up'; reason: string };

export interface RestartPolicy {
  onCrash(now?: number): RestartDecision;
}

export function createRestartPolicy(settings: RestartSettings, random: () => number = Math.random): RestartPolicy {
  let crashes: number[] = [];
  return {
    onCrash(now = Date.now()) {
      crashes = crashes.filter((at) => now - at < settings.windowMs);
      crashes.push(now);
      if (crashes.length > settings.maxRestarts) {
        return {
          action: 'give-up',
          reason: `crashed ${crashes.length} times within ${settings.windowMs} ms (limit ${settings.maxRestarts} restarts)`,
        };
      }
      const attempt = crashes.length;
      const ceiling = Math.min(settings.maxDelayMs, settings.initialDelayMs * 2 ** (attempt - 1));
      // "Equal jitter": at least half the backoff, so restarts spread out but never bunch at zero.
      return { action: 'restart', attempt, delayMs: Math.round(ceiling / 2 + (random() * ceiling) / 2) };
    },
  };
}
