import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { WharfError } from '../../src/errors.js';
import type { Batch } from 'kafkajs';
import { createFetchBuffer, type FetchLane } from '../../src/kafka/fetch-buffer.js';
import { createFlowControl, type TopicPartition } from '../../src/kafka/flow-control.js';
import { createOffsetCommitter, nextOffset, type PartitionOffset } from '../../src/kafka/offset-committer.js';
import { createBreather, createPartitionLane, type Handled, type LaneContext, type UnderwaySends } from '../../src/kafka/partition-lane.js';
import { createSlots, isRetriable, retryDelay, sleep } from '../../src/kafka/retry.js';
import type { InboundMessage } from '../../src/service.js';
import { waitFor } from '../wait.js';

const logger = createLogger({ level: 'silent' });

describe('flow control', () => {
  function flow(maxInFlight: number, maxInFlightPerPartition: number) {
    const paused = new Set<string>();
    const control = createFlowControl({
      maxInFlight,
      maxInFlightPerPartition,
      setPaused: (partitions: TopicPartition[], pause: boolean) =>
        partitions.forEach((p) => (pause ? paused.add(`${p.topic}/${p.partition}`) : paused.delete(`${p.topic}/${p.partition}`))),
    });
    control.assign([0, 1, 2].map((partition) => ({ topic: 't', partition })));
    return { control, paused };
  }

  it('gives a partition room up to its own limit and the worker up to its limit, never more', () => {
    const { control, paused } = flow(20, 10);
    expect(control.room('t', 0)).toBe(10);
    control.add('t', 0, 8);
    control.add('t', 1, 8);
    expect(control.room('t', 0)).toBe(2);
    expect(control.room('t', 2), 'what the worker has left').toBe(4);
    control.add('t', 2, 4);
    expect(control.room('t', 2)).toBe(0);
    expect(control.stats).toMatchObject({ inFlight: 20, maxInFlightSeen: 20 });
    expect(paused.size, 'counting alone pauses nothing').toBe(0);
    control.done('t', 0, 8);
    expect(control.room('t', 0)).toBe(8);
    expect(control.room('t', 1)).toBe(2);
  });

  it('pauses a partition while the buffer holds messages of it and resumes it when none are; stop pauses all', () => {
    const { control, paused } = flow(20, 10);
    control.hold('t', 1, true);
    expect([...paused]).toEqual(['t/1']);
    expect(control.stats).toMatchObject({ pausedPartitions: 1, pauses: 1 });
    control.hold('t', 1, true);
    expect(control.stats.pauses, 'told twice, paused once').toBe(1);
    // kafkajs forgets pauses when it restarts: a new assignment states them again.
    paused.clear();
    control.assign([0, 1, 2].map((partition) => ({ topic: 't', partition })));
    expect([...paused]).toEqual(['t/1']);
    control.hold('t', 1, false);
    expect(paused.size).toBe(0);
    expect(control.stats.pausedPartitions).toBe(0);
    control.stop();
    expect(paused.size).toBe(3);
    expect(control.room('t', 0)).toBe(0);
    control.hold('t', 0, false);
    expect(paused.size, 'stopped stays paused').toBe(3);
  });

  it('keeps room, counts and pauses right over a long random run', () => {
    let seed = 7;
    const random = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    const max = 14; // below 3 × per: the worker fills before its partitions do
    const per = 8;
    const { control, paused } = flow(max, per);
    const inFlight = [0, 0, 0];
    const held = [false, false, false];
    for (let step = 0; step < 5_000; step++) {
      const p = random(3);
      const room = control.room('t', p);
      expect(room).toBe(Math.max(0, Math.min(per - inFlight[p]!, max - inFlight.reduce((a, b) => a + b))));
      const action = random(3);
      if (action === 0 && room > 0) {
        const n = 1 + random(room);
        control.add('t', p, n);
        inFlight[p]! += n;
      } else if (action === 1 && inFlight[p]! > 0) {
        const n = 1 + random(inFlight[p]!);
        control.done('t', p, n);
        inFlight[p]! -= n;
      } else if (action === 2) {
        held[p] = random(2) === 0;
        control.hold('t', p, held[p]);
      }
      const expected = [0, 1, 2].filter((i) => held[i]).map((i) => `t/${i}`);
      expect([...paused].sort(), `step ${step}`).toEqual(expected);
      expect(control.stats.pausedPartitions).toBe(expected.length);
      expect(control.stats.inFlight).toBe(inFlight.reduce((a, b) => a + b));
    }
  });

  it('counts messages of a partition that was revoked against the worker only', () => {
    const { control } = flow(20, 10);
    control.add('t', 0, 5);
    control.assign([{ topic: 't', partition: 1 }]);
    control.done('t', undefined, 5);
    expect(control.stats.inFlight).toBe(0);
  });
});

describe('the fetch buffer with flow control', () => {
  it('pauses a partition only while accepting its own batch, resumes it once nothing of it is held, and holds at most a fetch', async () => {
    // A pause while a fetch of the partition is in flight makes kafkajs drop that fetch and fetch
    // it again (test/integration/flow-refetch.test.ts): within `accept` of the partition's own
    // batch, its fetcher waits for the batch, so nothing of it is in flight.
    let seed = 11;
    const random = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    const partitions = 4;
    const fetchSize = 200;
    let accepting: number | undefined;
    const paused = new Set<number>();
    const badPauses: string[] = [];
    const flow = createFlowControl({
      maxInFlight: 120,
      maxInFlightPerPartition: 50,
      setPaused: (tps: TopicPartition[], pause: boolean) => {
        for (const { partition } of tps) {
          if (pause && accepting !== partition) badPauses.push(`partition ${partition} paused while accepting ${accepting}`);
          if (pause) paused.add(partition);
          else paused.delete(partition);
        }
      },
    });
    const lanes: (FetchLane & { running: number; next: number })[] = Array.from({ length: partitions }, (_, partition) => ({
      topic: 't',
      partition,
      nextOffset: undefined,
      running: 0,
      next: 0,
    }));
    const buffer = createFetchBuffer({
      lane: (_topic, partition) => lanes[partition],
      room: (lane) => flow.room(lane.topic, lane.partition),
      take(lane, messages) {
        flow.add(lane.topic, lane.partition, messages.length);
        lanes[lane.partition]!.running += messages.length;
      },
      holding: (lane, holding) => flow.hold(lane.topic, lane.partition, holding),
    });
    flow.assign(lanes.map(({ topic, partition }) => ({ topic, partition })));
    let fetched = 0;
    for (let step = 0; step < 3_000; step++) {
      const lane = lanes[random(partitions)]!;
      if (random(3) === 0 && !paused.has(lane.partition)) {
        // A fetch of an unpaused partition: `fetchSize` messages from where the last one ended.
        const from = Number(lane.nextOffset ?? 0n);
        const messages = Array.from({ length: fetchSize }, (_, i) => ({ offset: String(from + i) }) as KafkaMessage);
        const batch = {
          topic: 't',
          partition: lane.partition,
          messages,
          lastOffset: () => String(from + fetchSize - 1),
        } as unknown as Batch;
        accepting = lane.partition;
        buffer.accept(lane, batch, () => undefined);
        accepting = undefined;
        fetched += fetchSize;
      } else if (lane.running > 0) {
        const done = 1 + random(lane.running);
        lane.running -= done;
        lane.next += done;
        flow.done('t', lane.partition, done);
        buffer.feed();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const waiting = lanes.map((l) => Number(l.nextOffset ?? 0n) - l.next - l.running);
      for (const [p, w] of waiting.entries()) expect(w, `held of partition ${p} at step ${step}`).toBeLessThanOrEqual(fetchSize);
      expect(flow.stats.inFlight).toBeLessThanOrEqual(120);
    }
    expect(badPauses).toEqual([]);
    expect(fetched, 'the run fetched a lot').toBeGreaterThan(10 * fetchSize);
    expect(flow.stats.pauses, 'and paused often').toBeGreaterThan(10);
  });
});

describe('nextOffset', () => {
  it('adds one to an int64 offset string, exactly, also past 2^53', () => {
    expect(nextOffset('0')).toBe('1');
    expect(nextOffset('41')).toBe('42');
    expect(nextOffset('9007199254740990')).toBe('9007199254740991');
    expect(nextOffset('9007199254740991')).toBe('9007199254740992');
    expect(nextOffset('9223372036854775806')).toBe('9223372036854775807');
  });
});

describe('the offset committer', () => {
  function committer(threshold: number, fail = false) {
    const commits: PartitionOffset[][] = [];
    let failing = fail;
    const c = createOffsetCommitter({
      commit: async (offsets) => {
        if (failing) throw new WharfError('ERR_KAFKA', 'coordinator away');
        commits.push(offsets);
      },
      intervalMs: 60_000,
      threshold,
      isAssigned: (_topic, partition) => partition !== 9,
      logger,
    });
    return { c, commits, recover: () => (failing = false) };
  }

  it('commits the newest offset per partition once `threshold` messages are done', async () => {
    const { c, commits } = committer(3);
    c.mark('t', 0, '1');
    c.mark('t', 0, '2');
    expect(commits).toEqual([]);
    c.mark('t', 1, '5');
    await c.flush();
    expect(commits).toEqual([
      [
        { topic: 't', partition: 0, offset: '2' },
        { topic: 't', partition: 1, offset: '5' },
      ],
    ]);
    await c.flush();
    expect(commits, 'nothing new, nothing sent').toHaveLength(1);
    expect(c.stats).toMatchObject({ commits: 1, committedMessages: 3 });
  });

  it('keeps offsets whose commit failed for the next one, unless the partition was lost', async () => {
    const { c, commits, recover } = committer(100, true);
    c.mark('t', 0, '4');
    c.mark('t', 9, '4');
    await c.flush();
    expect(c.stats.commitFailures).toBe(1);
    recover();
    await c.flush();
    expect(commits).toEqual([[{ topic: 't', partition: 0, offset: '4' }]]);
  });

  it('commits the offset after the last one marked through, and a later mark of either kind wins', async () => {
    const { c, commits } = committer(100);
    c.markThrough('t', 0, '41');
    c.markThrough('t', 0, '42');
    c.mark('t', 1, '7');
    c.markThrough('t', 1, '9007199254740991');
    c.markThrough('t', 2, '3');
    c.mark('t', 2, '10');
    await c.flush();
    expect(commits).toEqual([
      [
        { topic: 't', partition: 0, offset: '43' },
        { topic: 't', partition: 1, offset: '9007199254740992' },
        { topic: 't', partition: 2, offset: '10' },
      ],
    ]);
    expect(c.stats.committedMessages).toBe(6);
  });

  it('forgets a revoked partition', async () => {
    const { c, commits } = committer(100);
    c.mark('t', 0, '4');
    c.forget('t', 0);
    await c.flush();
    expect(commits).toEqual([]);
  });
});

describe('retry pieces', () => {
  it('backs off exponentially within [50%, 100%] of the capped delay', () => {
    const policy = { attempts: 5, initialDelayMs: 100, maxDelayMs: 1_000 };
    expect([1, 2, 3, 4, 5].map((a) => retryDelay(policy, a, () => 1))).toEqual([100, 200, 400, 800, 1_000]);
    expect(retryDelay(policy, 2, () => 0)).toBe(100);
  });

  it('retries unless the error says it cannot succeed again', () => {
    expect(isRetriable(new Error('x'))).toBe(true);
    expect(isRetriable(new WharfError('ERR_KAFKA', 'x'))).toBe(false);
    expect(isRetriable(new WharfError('ERR_KAFKA', 'x', { retriable: true }))).toBe(true);
  });

  it('sleeps can be cut short; slots are granted in order and given up on abort', async () => {
    const abort = new AbortController();
    const slept = sleep(10_000, abort.signal);
    abort.abort();
    expect(await slept).toBe(false);
    const slots = createSlots(1);
    expect(await slots.acquire()).toBe(true);
    const order: number[] = [];
    const second = slots.acquire().then(() => order.push(2));
    const gone = new AbortController();
    const third = slots.acquire(gone.signal);
    gone.abort();
    expect(await third).toBe(false);
    slots.release();
    await second;
    expect(order).toEqual([2]);
    expect(slots.active).toBe(1);
  });
});

describe('a partition lane', () => {
  const message = (offset: number, value: unknown = { n: offset }) =>
    ({
      offset: String(offset),
      key: null,
      value: Buffer.from(JSON.stringify(value)),
      headers: {},
      timestamp: '0',
      attributes: 0,
    }) as unknown as KafkaMessage;

  function lane(
    handle: (m: InboundMessage) => Promise<UnderwaySends | void>,
    { attempts = 3, concurrency = 1, breathe = (_now: number): Promise<void> | undefined => undefined } = {},
  ) {
    const finished: { offset: string; committable: boolean }[] = [];
    const parked: { offset: string; code: unknown; attempts: number }[] = [];
    const ctx: LaneContext = {
      decode: async (topic, partition, m) => {
        const value = JSON.parse(m.value!.toString());
        if (value.bad) throw new WharfError('ERR_DECODE', 'bad value');
        return { value, key: null, headers: {}, topic, partition, offset: m.offset, timestamp: '0' };
      },
      // What the handler's promise gives is what it left under way.
      handle(m) {
        let underway: Handled;
        return { returned: handle(m).then((u) => void (underway = u)), underway: () => underway };
      },
      park: async ({ message: m }, { error, attempts: a }) =>
        void parked.push({ offset: m.offset, code: (error as WharfError).code ?? error.message, attempts: a }),
      retry: { attempts, initialDelayMs: 1, maxDelayMs: 2 },
      slots: createSlots(concurrency),
      stats: { handled: 0, errors: 0, retries: 0, deadLettered: 0, rejected: 0 },
      logger,
      gate: () => undefined,
      breathe,
      finished: (_lane, m, committable) => void finished.push({ offset: m.offset, committable }),
    };
    return { lane: createPartitionLane('t', 0, ctx), finished, parked, stats: ctx.stats };
  }

  it('handles in offset order, retries, parks failures and rejections, and reports each as committable', async () => {
    const seen: number[] = [];
    const {
      lane: l,
      finished,
      parked,
      stats,
    } = lane(async (m) => {
      const { n } = m.value as { n: number };
      if (n === 2 && m.headers.attempt !== '3') throw new Error('flaky');
      if (n === 4) throw new Error('always');
      seen.push(n);
    });
    l.push([0, 1, 2, 3, 4].map((o) => message(o)).concat(message(5, { bad: true }), message(6)));
    await waitFor(() => finished.length === 7, { message: 'all seven finished' });
    expect(seen).toEqual([0, 1, 2, 3, 6]);
    expect(finished.map((f) => f.offset)).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    expect(finished.every((f) => f.committable)).toBe(true);
    expect(parked).toEqual([
      { offset: '4', code: 'always', attempts: 3 },
      { offset: '5', code: 'ERR_DECODE', attempts: 0 },
    ]);
    expect(stats).toEqual({ handled: 5, errors: 5, retries: 4, deadLettered: 2, rejected: 1 });
  });

  it('gives the event loop a turn every few ms of CPU-bound handlers, so fetches and heartbeats go on', async () => {
    const busy = (ms: number) => {
      for (const until = performance.now() + ms; performance.now() < until;);
    };
    const run = async (breathe: (now: number) => Promise<void> | undefined) => {
      const { lane: l, finished } = lane(async () => busy(2), { breathe });
      let turns = 0;
      const timer = setInterval(() => turns++, 1);
      l.push(Array.from({ length: 60 }, (_, o) => message(o)));
      await waitFor(() => finished.length === 60, { message: '60 handled' });
      clearInterval(timer);
      return turns;
    };
    // 120 ms of handlers: without a breather the lane never yields, so the timer cannot fire.
    expect(await run(() => undefined)).toBeLessThanOrEqual(1);
    expect(await run(createBreather(10))).toBeGreaterThanOrEqual(6);
  });

  it('parks at once an error that says it is not retriable', async () => {
    const { lane: l, parked } = lane(async () => {
      throw new WharfError('ERR_NO_REPLY_TO', 'nothing to reply to');
    });
    l.push([message(0)]);
    await waitFor(() => parked.length === 1, { message: 'the park' });
    expect(parked[0]).toMatchObject({ code: 'ERR_NO_REPLY_TO', attempts: 1 });
  });

  it('when revoked, drops what it queued and abandons a retry, without committing it', async () => {
    let calls = 0;
    const {
      lane: l,
      finished,
      parked,
    } = lane(
      async () => {
        calls++;
        throw new Error('down');
      },
      { attempts: 1_000 },
    );
    l.push([message(0), message(1), message(2)]);
    await waitFor(() => calls >= 3, { message: 'a few failed attempts' });
    expect(l.revoke()).toBe(2);
    await l.idle();
    expect(finished).toEqual([{ offset: '0', committable: false }]);
    expect(parked).toEqual([]);
  });

  /** Sends a test acknowledges or fails by hand, per offset and attempt. */
  function sendsByHand() {
    const acks = new Map<string, { resolve(): void; reject(error: unknown): void }>();
    const started: string[] = [];
    const handle = async (m: InboundMessage): Promise<UnderwaySends> => {
      const id = `${m.offset}#${m.headers.attempt}`;
      started.push(id);
      return { settled: new Promise<void>((resolve, reject) => acks.set(id, { resolve, reject })) };
    };
    return {
      acks,
      started,
      handle,
      ack: (id: string) => acks.get(id)!.resolve(),
      fail: (id: string, e: unknown) => acks.get(id)!.reject(e),
    };
  }

  it('pipelined: starts the next message while sends are under way, and finishes only the acknowledged prefix, in order', async () => {
    const hand = sendsByHand();
    const { lane: l, finished, stats } = lane(hand.handle, { concurrency: 1 });
    l.push([0, 1, 2, 3].map((o) => message(o)));
    // Every handler ran with nothing acknowledged yet: the lane did not wait for sends.
    await waitFor(() => hand.started.length === 4, { message: 'four handlers started' });
    expect(hand.started).toEqual(['0#1', '1#1', '2#1', '3#1']);
    hand.ack('1#1');
    hand.ack('3#1');
    await sleep(20);
    expect(finished).toEqual([]);
    let idle = false;
    void l.idle().then(() => (idle = true));
    hand.ack('0#1');
    await waitFor(() => finished.length === 2, { message: '0 and 1 finished' });
    await sleep(20);
    expect(finished.map((f) => f.offset)).toEqual(['0', '1']);
    expect(idle).toBe(false);
    hand.ack('2#1');
    await waitFor(() => idle, { message: 'idle once every send settled' });
    expect(finished).toEqual(['0', '1', '2', '3'].map((offset) => ({ offset, committable: true })));
    expect(stats.handled).toBe(4);
  });

  it('pipelined: a failed send stops new messages until those under way settle, then retries the failed one alone, in order', async () => {
    const hand = sendsByHand();
    const { lane: l, finished, parked, stats } = lane(hand.handle, { attempts: 2 });
    l.push([0, 1, 2].map((o) => message(o)));
    await waitFor(() => hand.started.length === 3, { message: 'three handlers started' });
    hand.fail('1#1', new Error('not enough replicas'));
    await sleep(10);
    l.push([message(3)]);
    await sleep(20);
    // 0 and 2 still under way: neither the retry of 1 nor message 3 starts.
    expect(hand.started).toEqual(['0#1', '1#1', '2#1']);
    hand.ack('0#1');
    hand.ack('2#1');
    await waitFor(() => hand.started.length === 4, { message: 'the retry of 1' });
    expect(hand.started[3]).toBe('1#2');
    expect(finished.map((f) => f.offset)).toEqual(['0']);
    await sleep(20);
    // The retry is not pipelined: 3 waits for its sends.
    expect(hand.started).toHaveLength(4);
    hand.fail('1#2', new Error('still not enough replicas'));
    await waitFor(() => hand.started.length === 5, { message: 'message 3 after 1 was parked' });
    expect(hand.started[4]).toBe('3#1');
    expect(parked).toEqual([{ offset: '1', code: 'still not enough replicas', attempts: 2 }]);
    expect(finished.map((f) => f.offset)).toEqual(['0', '1', '2']);
    hand.ack('3#1');
    await l.idle();
    expect(finished).toEqual(['0', '1', '2', '3'].map((offset) => ({ offset, committable: true })));
    expect(stats).toMatchObject({ handled: 3, errors: 2, retries: 1, deadLettered: 1 });
  });

  it('pipelined: when stopped, a send failing afterwards is abandoned and nothing after it is committable', async () => {
    const hand = sendsByHand();
    const { lane: l, finished, parked } = lane(hand.handle);
    l.push([0, 1, 2, 3].map((o) => message(o)));
    await waitFor(() => hand.started.length === 4, { message: 'four handlers started' });
    expect(l.stop()).toBe(0);
    hand.ack('0#1');
    hand.fail('1#1', new Error('down'));
    hand.ack('2#1');
    hand.ack('3#1');
    await l.idle();
    expect(finished).toEqual([
      { offset: '0', committable: true },
      { offset: '1', committable: false },
      { offset: '2', committable: false },
      { offset: '3', committable: false },
    ]);
    expect(parked).toEqual([]);
  });
});
