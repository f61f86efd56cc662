import { TimeoutError, WharfError } from '../errors.js';
import { durationArg, intArg, positiveIntArg } from './args.js';
import type { ObjectInit } from './messages.js';
import { describeObject, opTable, PENDING, unsupported, type ObjectEnv, type StateObject } from './object.js';
import { createWaitLine, formatMs, holderGone } from './waiters.js';

/**
 * Locks and semaphores: a lock is a semaphore of one permit with a default lease. A permit is
 * held in a holder's name under a token; it comes back when the holder releases it, when its
 * lease runs out, or when the holder's worker is released by the supervisor (it died). Waiters
 * are served first come, first served, and nobody jumps the line while others wait.
 */

/** Locks always have a lease, so a holder stuck in a loop cannot block everyone for ever. */
export const DEFAULT_LOCK_LEASE_MS = 30_000;

interface Holding {
  holderId: string;
  expiresAt: number | null;
  timer?: NodeJS.Timeout;
}

interface Grant {
  token: number;
  expiresAt: number | null;
}

export function createLeases(env: ObjectEnv, kind: 'lock' | 'semaphore', init: ObjectInit | undefined): StateObject {
  const what = describeObject(kind, env.name);
  const permits = kind === 'lock' ? 1 : positiveIntArg(init?.permits, `${what} permits`);
  const defaultLeaseMs = kind === 'lock' ? DEFAULT_LOCK_LEASE_MS : undefined;
  const holdings = new Map<number, Holding>();
  const waiters = createWaitLine<{ leaseMs: number | undefined }>();
  let nextToken = 1;

  /** Starts (or restarts) a holding's lease: `leaseMs` from now, or until `endsAt` (a restored lease). */
  function schedule(token: number, holding: Holding, leaseMs: number | undefined, endsAt?: number): void {
    if (holding.timer) clearTimeout(holding.timer);
    holding.timer = undefined;
    holding.expiresAt = endsAt ?? (leaseMs === undefined ? null : Date.now() + leaseMs);
    if (holding.expiresAt === null) return;
    holding.timer = setTimeout(
      () => {
        holdings.delete(token);
        env.logger?.warn(
          { component: 'state', name: env.name, kind, holderId: holding.holderId, leaseMs },
          `${what} lease expired; taken back from its holder`,
        );
        env.emit('expire', holding.holderId);
        serveWaiters();
      },
      Math.max(0, holding.expiresAt - Date.now()),
    );
    holding.timer.unref();
  }

  function grant(holderId: string, leaseMs: number | undefined): Grant {
    const token = nextToken++;
    const holding: Holding = { holderId, expiresAt: null };
    holdings.set(token, holding);
    schedule(token, holding, leaseMs);
    env.emit('acquire', holderId);
    return { token, expiresAt: holding.expiresAt };
  }

  function serveWaiters(): void {
    while (holdings.size < permits && waiters.length > 0) {
      const waiter = waiters.shift()!;
      waiter.call.resolve(grant(waiter.call.holderId, waiter.data.leaseMs));
    }
  }

  function release(token: number, op: string): boolean {
    const holding = holdings.get(token);
    if (!holding) return false;
    if (holding.timer) clearTimeout(holding.timer);
    holdings.delete(token);
    env.emit(op, holding.holderId);
    serveWaiters();
    return true;
  }

  function busyMessage(timeoutMs: number): string {
    const [first] = holdings.values();
    const by =
      kind === 'lock' && first
        ? ` it is held by ${JSON.stringify(first.holderId)}${first.expiresAt === null ? '' : ` (lease ends in ${formatMs(first.expiresAt - Date.now())})`}`
        : ` all ${permits} permits are held`;
    return `${what} not acquired within ${formatMs(timeoutMs)}:${by}. Raise timeoutMs, or hold it for less time.`;
  }

  return {
    kind,
    ops: opTable({
      acquire: ([leaseArg, timeoutArg], call) => {
        const leaseMs = leaseArg === undefined ? defaultLeaseMs : durationArg(leaseArg, `${what} leaseMs`);
        const timeoutMs = durationArg(timeoutArg, `${what} timeoutMs`);
        if (holdings.size < permits && waiters.length === 0) return grant(call.holderId, leaseMs);
        if (timeoutMs === 0) throw new TimeoutError(busyMessage(0), { context: { name: env.name, kind, timeoutMs } });
        waiters.add(call, { leaseMs }, timeoutMs, () => busyMessage(timeoutMs!));
        return PENDING;
      },
      release: ([token]) => release(intArg(token, `${what} token`), 'release'),
      extend: ([token, leaseArg]) => {
        const holding = holdings.get(intArg(token, `${what} token`));
        if (!holding) return false;
        schedule(token as number, holding, leaseArg === undefined ? defaultLeaseMs : durationArg(leaseArg, `${what} leaseMs`));
        // Announced like the other changes: a persisted lock records its new end.
        env.emit('extend', holding.holderId);
        return holding.expiresAt;
      },
      info: () => {
        const [first] = holdings.values();
        if (kind === 'semaphore') return { permits, available: permits - holdings.size, waiting: waiters.length };
        return first
          ? { held: true, holder: first.holderId, expiresAt: first.expiresAt, waiting: waiters.length }
          : { held: false, waiting: waiters.length };
      },
      available: () => permits - holdings.size,
    }),
    size: () => holdings.size,
    // Holders with their tokens: what a deployment's next owner takes back from the changelog (restore).
    snapshot: () => ({
      permits,
      available: permits - holdings.size,
      holders: [...holdings].map(([token, { holderId, expiresAt }]) => ({ holderId, expiresAt, token })),
      waiting: waiters.length,
      nextToken,
    }),
    load: () => {
      throw unsupported(kind, env.name, 'holders come and go with their workers, so it cannot be written; delete it to reset it');
    },
    restore: (value) => {
      const recorded = (typeof value === 'object' && value !== null ? value : {}) as { holders?: unknown; nextToken?: unknown };
      const now = Date.now();
      for (const entry of Array.isArray(recorded.holders) ? (recorded.holders as unknown[]) : []) {
        const { holderId, expiresAt, token } = (entry ?? {}) as { holderId?: unknown; expiresAt?: unknown; token?: unknown };
        if (typeof holderId !== 'string' || !Number.isSafeInteger(token) || holdings.size >= permits) continue;
        if (expiresAt !== null && typeof expiresAt !== 'number') continue;
        // A lease that ran out while no one served the object has ended; the rest keep what they had left.
        if (expiresAt !== null && expiresAt <= now) continue;
        const holding: Holding = { holderId, expiresAt: null };
        holdings.set(token as number, holding);
        schedule(token as number, holding, undefined, expiresAt ?? undefined);
      }
      const tokens = [...holdings.keys()];
      nextToken = Math.max(
        nextToken,
        Number.isSafeInteger(recorded.nextToken) ? (recorded.nextToken as number) : 1,
        ...tokens.map((t) => t + 1),
      );
    },
    checkInit: (asked) => {
      if (kind === 'semaphore' && asked?.permits !== undefined && asked.permits !== permits) {
        throw new WharfError(
          'ERR_STATE_CONFIG',
          `${what} exists with ${permits} permits; asked for ${asked.permits}. Use the same count everywhere, or another name.`,
          {
            context: { name: env.name, permits, asked: asked.permits },
          },
        );
      }
    },
    releaseHolder: (holderId) => {
      waiters.dropHolder(holderId, holderGone(holderId));
      for (const [token, holding] of [...holdings]) if (holding.holderId === holderId) release(token, 'release');
    },
    dispose: (error) => {
      waiters.rejectAll(error);
      for (const holding of holdings.values()) if (holding.timer) clearTimeout(holding.timer);
      holdings.clear();
    },
  };
}
