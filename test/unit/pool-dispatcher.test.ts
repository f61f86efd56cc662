import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { WharfError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createDispatcher, type AttemptOutcome, type Job } from '../../src/pool/dispatcher.js';
import { createKeyScheduler } from '../../src/pool/key-scheduler.js';
import { createOffsetTracker } from '../../src/pool/offset-tracker.js';
import type { ConcurrencyMode } from '../../src/pool/settings.js';

const logger = createLogger({ level: 'silent' });
const tick = () => new Promise((resolve) => setImmediate(resolve));

interface Call {
  key: string | null;
  offset: number;
  partition: number;
  attempt: number;
  settle(outcome: AttemptOutcome): void;
  crash(error: Error): void;
}

/** A dispatcher whose "pool" is a list of calls the test finishes one by one, in any order. */
function harness({ mode = 'key' as ConcurrencyMode, concurrency = 4, attempts = 3 } = {}) {
  const calls: Call[] = [];
  const parked: { offset: number; attempts: number; code?: string }[] = [];
  const commits: string[] = [];
  const dispatcher = createDispatcher({
    mode,
    concurrency,
    retry: { attempts, initialDelayMs: 1, maxDelayMs: 2 },
    logger,
    park: async ({ message }, { error, attempts: made }) => {
      parked.push({ offset: Number(message.offset), attempts: made, code: (error as WharfError).code });
    },
    execute: (job: Job) =>
      new Promise((settle, crash) =>
        calls.push({
          key: job.message.key?.toString() ?? null,
          offset: Number(job.message.offset),
          partition: job.lane.partition,
          attempt: job.attempt,
          settle,
          crash,
        }),
      ),
    onFinished: (topic, partition, commit) => {
      if (commit !== undefined) commits.push(`${topic}/${partition}@${commit}`);
    },
  });
  dispatcher.assign([
    { topic: 't', partition: 0 },
    { topic: 't', partition: 1 },
  ]);
  const push = (partition: number, messages: [string | null, number][]) =>
    dispatcher.push(
      dispatcher.lane('t', partition)!,
      messages.map(
        ([key, offset]) =>
          ({
            key: key === null ? null : Buffer.from(key),
            value: Buffer.from('{}'),
            offset: String(offset),
            timestamp: '0',
            attributes: 0,
            headers: {},
          }) as KafkaMessage,
      ),
    );
  const running = () => calls.filter((c) => !(c as Call & { done?: boolean }).done);
  const finish = async (offset: number, outcome: AttemptOutcome = { ok: true }, partition = 0) => {
    const call = running().find((c) => c.offset === offset && c.partition === partition);
    if (!call)
      throw new Error(
        `offset ${offset} is not running; running: ${running()
          .map((c) => c.offset)
          .join(',')}`,
      );
    (call as Call & { done?: boolean }).done = true;
    call.settle(outcome);
    await tick();
  };
  const startedOffsets = () => running().map((c) => c.offset);
  return { dispatcher, calls, parked, commits, push, finish, startedOffsets, running };
}

describe('offset tracker', () => {
  it('commits only the contiguous finished prefix, across offset gaps', () => {
    const tracker = createOffsetTracker();
    const [a, b, c] = ['5', '7', '10'].map((o) => tracker.add(o));
    expect(tracker.complete(b!)).toBeUndefined();
    expect(tracker.complete(c!)).toBeUndefined();
    expect(tracker.complete(a!)).toBe('11');
    expect(tracker.pending).toBe(0);
    expect(tracker.complete(a!)).toBeUndefined();
  });

  it('stays correct when it compacts its arrays', () => {
    const tracker = createOffsetTracker();
    const tickets = Array.from({ length: 5_000 }, (_, i) => tracker.add(String(i)));
    let last: string | undefined;
    for (let i = 0; i < 5_000; i += 2) expect(tracker.complete(tickets[i + 1]!)).toBeUndefined();
    for (let i = 0; i < 5_000; i += 2) last = tracker.complete(tickets[i]!) ?? last;
    expect(last).toBe('5000');
  });
});

describe('key scheduler', () => {
  it('readies one job per key at a time, in the order added; keyless jobs at once', () => {
    const ready: string[] = [];
    const keys = createKeyScheduler<string>((job) => ready.push(job));
    for (const [key, job] of [
      ['a', 'a1'],
      ['b', 'b1'],
      ['a', 'a2'],
      [undefined, 'x'],
      ['a', 'a3'],
    ] as const)
      keys.add(key, job);
    expect(ready).toEqual(['a1', 'b1', 'x']);
    expect(keys.waiting).toBe(2);
    keys.finish('a');
    keys.finish('b');
    expect(ready).toEqual(['a1', 'b1', 'x', 'a2']);
    keys.finish('a');
    keys.finish('a');
    expect(ready.at(-1)).toBe('a3');
    expect(keys.busyKeys).toBe(0);
  });
});

describe('dispatcher', () => {
  it('runs different keys side by side, one key at a time in offset order, and commits the finished prefix', async () => {
    const h = harness();
    h.push(0, [
      ['a', 0],
      ['a', 1],
      ['b', 2],
      ['a', 3],
      ['b', 4],
    ]);
    expect(h.startedOffsets()).toEqual([0, 2]);
    expect(h.dispatcher.stats).toMatchObject({ inFlight: 5, running: 2, waitingOnKey: 3 });
    await h.finish(2);
    expect(h.startedOffsets()).toEqual([0, 4]);
    expect(h.commits).toEqual([]); // 0 is still running
    await h.finish(4);
    await h.finish(0);
    expect(h.commits).toEqual(['t/0@1']); // 1 has not run yet
    expect(h.startedOffsets()).toEqual([1]);
    await h.finish(1);
    expect(h.commits).toEqual(['t/0@1', 't/0@3']); // 0, 1 and 2 done; 3 not yet
    expect(h.startedOffsets()).toEqual([3]);
    await h.finish(3);
    expect(h.commits).toEqual(['t/0@1', 't/0@3', 't/0@5']);
    expect(h.dispatcher.stats).toMatchObject({ inFlight: 0, handled: 5 });
  });

  it('keeps whole partitions in order in partition mode, and nothing in unordered mode, within the concurrency', async () => {
    const partition = harness({ mode: 'partition' });
    partition.push(0, [
      ['a', 0],
      ['b', 1],
    ]);
    partition.push(1, [['a', 0]]);
    expect(partition.running().map((c) => `${c.partition}@${c.offset}`)).toEqual(['0@0', '1@0']);

    const unordered = harness({ mode: 'unordered', concurrency: 3 });
    unordered.push(0, [
      ['a', 0],
      ['a', 1],
      ['a', 2],
      ['a', 3],
      ['a', 4],
    ]);
    expect(unordered.startedOffsets()).toEqual([0, 1, 2]);
    expect(unordered.dispatcher.stats.queued).toBe(2);
    await unordered.finish(1);
    expect(unordered.startedOffsets()).toEqual([0, 2, 3]);
  });

  it('retries a failed attempt (a thread that died) while its key waits, then parks it and moves on', async () => {
    const h = harness({ attempts: 3 });
    h.push(0, [
      ['a', 0],
      ['a', 1],
      ['b', 2],
    ]);
    const died = new WharfError('ERR_POOL_THREAD_EXITED', 'pool thread ended', { retriable: true });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const call = await waitForCall(h, 0, attempt);
      expect(h.startedOffsets()).not.toContain(1); // the key waits for every attempt
      (call as Call & { done?: boolean }).done = true;
      call.crash(died);
      await tick();
    }
    await waitUntil(() => h.parked.length === 1);
    expect(h.parked).toEqual([{ offset: 0, attempts: 3, code: 'ERR_POOL_THREAD_EXITED' }]);
    expect(h.startedOffsets()).toEqual([2, 1]);
    await h.finish(1);
    await h.finish(2);
    expect(h.commits.at(-1)).toBe('t/0@3');
    expect(h.dispatcher.stats).toMatchObject({ errors: 3, retries: 2, deadLettered: 1, handled: 2, inFlight: 0 });
  });

  it('parks at once what cannot succeed: non-retriable errors and rejected input', async () => {
    const h = harness();
    h.push(0, [
      ['a', 0],
      ['b', 1],
    ]);
    await h.finish(0, { ok: false, rejected: false, error: new WharfError('ERR_ENCODE', 'never', { retriable: false }) });
    await h.finish(1, { ok: false, rejected: true, error: new WharfError('ERR_SCHEMA', 'bad value') });
    await waitUntil(() => h.parked.length === 2);
    expect(h.parked).toEqual([
      { offset: 0, attempts: 1, code: 'ERR_ENCODE' },
      { offset: 1, attempts: 0, code: 'ERR_SCHEMA' },
    ]);
    expect(h.calls).toHaveLength(2);
    expect(h.dispatcher.stats).toMatchObject({ rejected: 1, errors: 1, retries: 0, deadLettered: 2 });
  });

  it('stop: attempts running finish and are committed; waiting messages are abandoned, never run, never committed', async () => {
    const h = harness();
    h.push(0, [
      ['a', 0],
      ['a', 1],
      ['b', 2],
    ]);
    h.dispatcher.stop();
    let idle = false;
    void h.dispatcher.idle().then(() => (idle = true));
    await h.finish(2);
    await h.finish(0);
    await tick();
    expect(idle).toBe(true);
    expect(h.calls.map((c) => c.offset)).toEqual([0, 2]);
    expect(h.commits).toEqual(['t/0@1']); // 1 was abandoned: 2 is done but past it
  });

  it('a revoked partition finishes what runs without committing it, and its keys wait for it after a reassignment', async () => {
    const h = harness();
    h.push(0, [
      ['a', 0],
      ['a', 1],
    ]);
    h.dispatcher.assign([{ topic: 't', partition: 1 }]);
    h.dispatcher.assign([
      { topic: 't', partition: 0 },
      { topic: 't', partition: 1 },
    ]);
    // Fetched again from the last commit by the new lane: offset 0 must wait for the old attempt.
    h.push(0, [
      ['a', 0],
      ['a', 1],
    ]);
    expect(h.startedOffsets()).toEqual([0]);
    await h.finish(0);
    expect(h.commits).toEqual([]);
    expect(h.startedOffsets()).toEqual([0]); // the new lane's 0; the old lane's 1 was abandoned
    await h.finish(0);
    await h.finish(1);
    expect(h.commits).toEqual(['t/0@1', 't/0@2']);
  });

  it('starts nothing while paused (a rebalance), then resumes', async () => {
    const h = harness();
    h.dispatcher.pause();
    h.push(0, [['a', 0]]);
    expect(h.calls).toHaveLength(0);
    h.dispatcher.resume();
    expect(h.startedOffsets()).toEqual([0]);
  });

  it('under any completion order: keys in offset order, commits never past an unfinished message', async () => {
    const h = harness({ concurrency: 8 });
    const messages: [string, number][] = Array.from({ length: 300 }, (_, i) => [`k${(i * 7) % 13}`, i]);
    h.push(0, messages);
    const done = new Set<number>();
    const orderByKey = new Map<string, number[]>();
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    while (h.running().length > 0) {
      const running = h.running();
      expect(running.length).toBeLessThanOrEqual(8);
      expect(new Set(running.map((c) => c.key)).size, 'one message per key at a time').toBe(running.length);
      const call = running[Math.floor(random() * running.length)]!;
      orderByKey.set(call.key!, [...(orderByKey.get(call.key!) ?? []), call.offset]);
      const before = h.commits.length;
      await h.finish(call.offset);
      done.add(call.offset);
      for (const commit of h.commits.slice(before)) {
        const next = Number(commit.split('@')[1]);
        for (let o = 0; o < next; o++) expect(done.has(o), `committed ${next} with ${o} unfinished`).toBe(true);
      }
    }
    for (const offsets of orderByKey.values()) expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(done.size).toBe(300);
    expect(h.commits.at(-1)).toBe('t/0@300');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function waitForCall(h: ReturnType<typeof harness>, offset: number, attempt: number): Promise<Call> {
  await waitUntil(() => h.running().some((c) => c.offset === offset && c.attempt === attempt));
  return h.running().find((c) => c.offset === offset && c.attempt === attempt)!;
}
