import type { KafkaMessage } from 'kafkajs';
import type { Logger } from '../log.js';
import type { ThreadMetrics } from '../thread-metrics.js';
import type { InboundMessage } from './message.js';
import { HEADERS } from './codec.js';
import type { DeadLetterReason, DeadLetterSource } from './dead-letter.js';
import type { InboundDecoder } from './inbound.js';
import { isRetriable, retryDelay, sleep, type RetryPolicy, type Slots } from './retry.js';

export interface DeliveryStats {
  /** Messages whose handler succeeded. */
  handled: number;
  /** Handler attempts that threw. */
  errors: number;
  /** Attempts made again after a failure. */
  retries: number;
  /** Messages parked in `<topic>.dlq`: handlers out of attempts, and rejected input. */
  deadLettered: number;
  /** Of those, values that never reached the handler (too large, not decodable, failing the schema). */
  rejected: number;
}

/**
 * What a handler left under way when it returned (`pipelineSends`): `settled` resolves once every
 * send and reply it started was acknowledged, and rejects with the first that failed.
 */
export interface UnderwaySends {
  readonly settled: Promise<void>;
}

/** What running a handler gave: its sends still under way (pipelined), or nothing once the message is handled. */
export type Handled = UnderwaySends | void;

/**
 * A handler started on a message (LaneContext.handle): what it returned, and — once that settled —
 * its sends still under way. One object for both, so the lane waits on the handler's own promise
 * and a message costs no second promise to carry the sends (src/worker/context.ts MessageSends).
 */
export interface Started {
  /** A native promise when the handler is asynchronous (a rejection fails the attempt); anything else when it returned. */
  readonly returned: unknown;
  /**
   * Once `returned` settled: the sends still under way, to let the lane start the next message
   * meanwhile (the message is finished once they settle), or nothing once the message is handled.
   * A throw (a send failed already) fails the attempt.
   */
  underway(): Handled;
}

export interface LaneContext {
  decode: InboundDecoder;
  /** Starts the handler on a message; a throw fails the attempt. */
  handle(message: InboundMessage): Started;
  /** Counts each message's first attempt as consumed and times every attempt (`/metrics`). */
  metrics?: Pick<ThreadMetrics, 'consumed' | 'processed'>;
  park(source: DeadLetterSource, reason: DeadLetterReason): Promise<void>;
  retry: RetryPolicy;
  slots: Slots;
  stats: DeliveryStats;
  logger: Logger;
  /** While the group rebalances, a promise of its end: no new message starts before it. */
  gate(): Promise<void> | undefined;
  /**
   * A promise of the next event-loop turn when the lanes have kept the thread for a while. Each
   * message continues the lane in a microtask, so CPU-bound handlers would otherwise run queue
   * after queue without letting kafkajs read a fetch response or send a heartbeat.
   */
  breathe(now: number): Promise<void> | undefined;
  /** A message is finished: `committable` when handled or parked, not when abandoned. */
  finished(lane: PartitionLane, message: KafkaMessage, committable: boolean): void;
}

export interface PartitionLane {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to accept from a fetch; lower ones were taken already (redelivered after a rebalance). */
  nextOffset: bigint | undefined;
  /** False once revoked: its results are not this member's to commit or park any more. */
  readonly owned: boolean;
  push(messages: KafkaMessage[]): void;
  /**
   * Stops taking messages (draining): a retry waiting is abandoned, queued messages are dropped
   * (the partition's next owner gets them from the last commit) and the one running finishes.
   * Returns how many were dropped.
   */
  stop(): number;
  /** stop(), and the partition is no longer this member's. */
  revoke(): number;
  /** Resolves when nothing runs any more and every message's sends settled. */
  idle(): Promise<void>;
}

type Outcome = 'finished' | 'abandoned';

/** How far a message got when its handler returned: an outcome, or sends still under way (pipelined). */
type Step = { outcome: Outcome } | { settling: Promise<void>; inbound: InboundMessage; attempt: number };

const FINISHED: Step = { outcome: 'finished' };
const ABANDONED: Step = { outcome: 'abandoned' };

/** A message past its handler, in offset order, until it is finished (handed to `ctx.finished`). */
interface Pending {
  message: KafkaMessage;
  /** `settling` while its sends are under way; `failed` (with `error`) if one of them failed. */
  state: Outcome | 'settling' | 'failed';
  inbound?: InboundMessage;
  attempt: number;
  error?: unknown;
  /** While `settling`: resolves once the state changed. */
  settled?: Promise<void>;
}

/**
 * LaneContext.breathe for one thread's lanes: once they have run `everyMs` without the event
 * loop getting a turn, the next message waits for one (setImmediate). 10 ms keeps a CPU-bound
 * handler's fetches and heartbeats flowing at a cost of one turn per 10 ms of work.
 */
export function createBreather(everyMs = 10): (now: number) => Promise<void> | undefined {
  let last = performance.now();
  return (now) => {
    if (now - last < everyMs) return undefined;
    return new Promise((resolve) =>
      setImmediate(() => {
        last = performance.now();
        resolve();
      }),
    );
  };
}

/**
 * One partition's messages, handled one after another in offset order: the unit of ordering.
 * Lanes run side by side, bounded by `slots`; a message waiting out a retry delay gives its slot
 * back, so a failing partition never holds up the others.
 *
 * Pipelined sends: when `handle` returns with sends still under way, the next message starts at
 * once, and messages are finished strictly in offset order as their sends settle, so a commit
 * never covers a message whose sends are not all acknowledged. A send that fails stops the lane
 * from starting anything new until every message under way settled; then each failed message is
 * tried again in offset order, one at a time, awaiting its sends (retried, then parked), and the
 * lane goes on. The messages after it that already ran stay handled: at least once, as ever.
 */
export function createPartitionLane(topic: string, partition: number, ctx: LaneContext): PartitionLane {
  /** Messages waiting, from `head` on: read by position, as Array#shift moves the rest each time. */
  const queue: (KafkaMessage | undefined)[] = [];
  let head = 0;
  const waiting = () => queue.length - head;
  /** Messages past their handler and not yet finished, in offset order. */
  const handled: Pending[] = [];
  const abort = new AbortController();
  let running = false;
  let accepting = true;
  let owned = true;
  /** A message was abandoned: no later one may be committed by this member. */
  let broken = false;
  let failures = 0;
  let idlers: (() => void)[] = [];
  const where = (message: KafkaMessage) => ({ topic, partition, offset: message.offset });

  /** Parks until it succeeds: a message is never committed before it is handled or parked. */
  async function park(message: KafkaMessage, reason: DeadLetterReason): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        await ctx.park({ topic, partition, message }, reason);
        ctx.stats.deadLettered++;
        ctx.logger.warn(
          { ...where(message), code: (reason.error as { code?: string }).code, reason: reason.error.message, attempts: reason.attempts },
          'message parked in the dead-letter topic',
        );
        return 'finished';
      } catch (error) {
        ctx.logger.error({ ...where(message), err: error, attempt }, 'could not park a message in the dead-letter topic; trying again');
        if (!(await sleep(retryDelay({ initialDelayMs: 200, maxDelayMs: 5_000, attempts: 0 }, attempt), abort.signal))) return 'abandoned';
      }
    }
  }

  /**
   * After a failed attempt: parks the message when it is out of attempts (or the error says it
   * cannot succeed), else waits out the retry delay without its slot and says to go `again`.
   */
  async function failed(message: KafkaMessage, error: unknown, attempt: number, slot: { held: boolean }): Promise<Outcome | 'again'> {
    ctx.stats.errors++;
    if (!owned) return 'abandoned';
    if (attempt >= ctx.retry.attempts || !isRetriable(error)) return park(message, { error: error as Error, attempts: attempt });
    ctx.stats.retries++;
    const delayMs = retryDelay(ctx.retry, attempt);
    ctx.logger.debug({ ...where(message), attempt, delayMs, err: error }, 'handler failed; retrying');
    if (slot.held) ctx.slots.release();
    slot.held = false;
    if (!(await sleep(delayMs, abort.signal)) || !(await ctx.slots.acquire(abort.signal))) return 'abandoned';
    slot.held = true;
    return 'again';
  }

  /** The attempt's duration, for `/metrics`. */
  function timed(started: number): void {
    ctx.metrics?.processed(topic, (performance.now() - started) / 1_000);
  }

  /** What a handler's return makes of its message: sends under way (pipelined), or handled. */
  function stepOf(result: Handled, inbound: InboundMessage, attempt: number): Step {
    if (result) return { settling: result.settled, inbound, attempt };
    ctx.stats.handled++;
    return FINISHED;
  }

  /** Attempts from `first` on; with `pipeline`, returns as soon as a handler returned with sends under way. */
  async function attempts(
    message: KafkaMessage,
    inbound: InboundMessage,
    first: number,
    slot: { held: boolean },
    pipeline: boolean,
  ): Promise<Step> {
    for (let attempt = first; ; attempt++) {
      let error: unknown;
      inbound.headers[HEADERS.attempt] = String(attempt);
      if (attempt === 1) ctx.metrics?.consumed(topic);
      const started = performance.now();
      try {
        const run = ctx.handle(inbound);
        await run.returned;
        let result = run.underway();
        timed(started);
        if (result && !pipeline) {
          await result.settled;
          result = undefined;
        }
        return stepOf(result, inbound, attempt);
      } catch (e) {
        error = e;
      }
      const next = await failed(message, error, attempt, slot);
      if (next !== 'again') return next === 'finished' ? FINISHED : ABANDONED;
    }
  }

  // The message running now: the lane runs one at a time, so this state and the callbacks below
  // are made once per lane, not once per message.
  const slot = { held: false };
  let taken: KafkaMessage | undefined;
  let takenInbound: InboundMessage | undefined;
  /** Its handler, while its promise is pending. */
  let takenRun: Started | undefined;
  let takenStarted = 0;

  /**
   * A clock reading taken as a message's handler returned, which the lane, going on at once in
   * the same turn (firstDone), takes as the next message's start: one reading per message.
   */
  let clock = 0;

  /** A first attempt's handler returned: its sends under way (pipelined), or handled. */
  function firstStep(result: Handled): Step {
    if (ctx.metrics) {
      clock = performance.now();
      ctx.metrics.processed(topic, (clock - takenStarted) / 1_000);
    }
    return stepOf(result, takenInbound!, 1);
  }

  async function firstFailed(error: unknown): Promise<Step> {
    const message = taken!;
    const inbound = takenInbound!;
    timed(takenStarted);
    const next = await failed(message, error, 1, slot);
    if (next !== 'again') return next === 'finished' ? FINISHED : ABANDONED;
    return attempts(message, inbound, 2, slot, true);
  }

  /** The message taken is done: the lane goes on with the next. */
  const done = (step: Step): void => {
    try {
      if (finish(step)) pump();
    } catch (error) {
      laneFailed(error);
    }
  };
  const firstDone = (): void => {
    let result: Handled;
    try {
      result = takenRun!.underway();
    } catch (error) {
      return firstRejected(error);
    }
    let step: Step;
    try {
      step = firstStep(result);
    } catch (error) {
      clock = 0;
      return laneFailed(error);
    }
    done(step);
    clock = 0; // never read later than this turn
  };
  const firstRejected = (error: unknown): void => later(firstFailed(error));

  function later(step: Promise<Step>): undefined {
    step.then(done, laneFailed);
    return undefined;
  }

  /**
   * Handles the message taken: its Step when that is known at once, else undefined and the lane
   * goes on from `done`. The usual message (no schema, handled at the first attempt) costs the
   * lane one `then` on the handler's promise, and nothing when the handler returns synchronously.
   */
  function process(message: KafkaMessage, now: number): Step | undefined {
    let decoded: InboundMessage | Promise<InboundMessage>;
    try {
      decoded = ctx.decode(topic, partition, message);
    } catch (error) {
      return later(rejected(message, error));
    }
    if (decoded instanceof Promise) {
      return later(
        decoded.then(
          (inbound) => attempts(message, inbound, 1, slot, true),
          (error: unknown) => rejected(message, error),
        ),
      );
    }
    decoded.headers[HEADERS.attempt] = '1';
    ctx.metrics?.consumed(topic);
    takenInbound = decoded;
    takenStarted = now;
    let result: Handled;
    try {
      const run = ctx.handle(decoded);
      if (run.returned instanceof Promise) {
        takenRun = run;
        run.returned.then(firstDone, firstRejected);
        return undefined;
      }
      result = run.underway();
    } catch (error) {
      return later(firstFailed(error));
    }
    return firstStep(result);
  }

  /** Bytes that cannot become a value will not become one on a second try: parked at once. */
  async function rejected(message: KafkaMessage, error: unknown): Promise<Step> {
    ctx.stats.rejected++;
    return (await park(message, { error: error as Error, attempts: 0 })) === 'finished' ? FINISHED : ABANDONED;
  }

  /** Hands finished messages to `ctx.finished` in offset order, as far as the first one still under way. */
  function release(): void {
    while (handled.length > 0) {
      const first = handled[0]!;
      if (first.state !== 'finished' && first.state !== 'abandoned') break;
      handled.shift();
      if (first.state === 'abandoned') broken = true;
      ctx.finished(lane, first.message, first.state === 'finished' && !broken);
    }
    settleIdle();
  }

  /** Records how far a message got; one with sends under way is finished when they settle. */
  function record(message: KafkaMessage, step: Step): void {
    if ('outcome' in step) {
      if (handled.length === 0) {
        // Nothing before it under way: finished now (every message when nothing is pipelined).
        if (step.outcome === 'abandoned') broken = true;
        ctx.finished(lane, message, step.outcome === 'finished' && !broken);
        return;
      }
      handled.push({ message, state: step.outcome, attempt: 0 });
      return release();
    }
    const entry: Pending = { message, state: 'settling', inbound: step.inbound, attempt: step.attempt };
    handled.push(entry);
    entry.settled = step.settling.then(
      () => {
        entry.state = 'finished';
        ctx.stats.handled++;
        release();
      },
      (error: unknown) => {
        entry.state = 'failed';
        entry.error = error;
        failures++;
        kick();
      },
    );
  }

  /**
   * A pipelined message's send failed: nothing new starts until every message under way settled;
   * then each failed one is tried again in offset order, one at a time, awaiting its sends.
   */
  async function recover(): Promise<void> {
    // Nothing starts meanwhile, and the retries below await their sends: one wait covers them all.
    await Promise.all(handled.map((h) => h.settled));
    for (const entry of handled.filter((h) => h.state === 'failed')) {
      failures--;
      const retrySlot = { held: false };
      let outcome: Outcome = 'abandoned';
      try {
        const next = accepting ? await failed(entry.message, entry.error, entry.attempt, retrySlot) : 'abandoned';
        if (next === 'again') {
          const step = await attempts(entry.message, entry.inbound!, entry.attempt + 1, retrySlot, false);
          outcome = 'outcome' in step ? step.outcome : 'abandoned';
        } else outcome = next;
      } finally {
        if (retrySlot.held) ctx.slots.release();
        entry.state = outcome;
      }
    }
    release();
  }

  function settleIdle(): void {
    if (running || handled.length > 0 || idlers.length === 0) return;
    const waiting = idlers;
    idlers = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * Runs the lane: takes a slot and the next message, and goes on in a plain loop while messages
   * finish synchronously; waits (gate, breather, slot, recovery, a handler's promise) by handing
   * the rest of the loop to that promise. No async function per message.
   */
  function pump(): void {
    try {
      for (;;) {
        // One clock reading per message: the breather's, and the start of the handler's time.
        let now = clock;
        clock = 0;
        if (!slot.held) {
          if (failures > 0) return void recover().then(pump, laneFailed);
          if (!accepting || waiting() === 0) return halt();
          const rebalancing = ctx.gate();
          if (rebalancing) return void rebalancing.then(pump, laneFailed);
          now ||= performance.now();
          const breath = ctx.breathe(now);
          if (breath) return void breath.then(pump, laneFailed);
          if (!ctx.slots.tryAcquire()) return void ctx.slots.acquire(abort.signal).then(acquired, laneFailed);
          slot.held = true;
        }
        if (!accepting || failures > 0 || waiting() === 0) {
          slot.held = false;
          ctx.slots.release();
          continue;
        }
        const message = queue[head]!;
        queue[head++] = undefined;
        taken = message;
        const step = process(message, now || performance.now());
        if (step === undefined || !finish(step)) return void (clock = 0);
      }
    } catch (error) {
      laneFailed(error);
    }
  }

  function acquired(got: boolean): void {
    if (!got) return halt();
    slot.held = true;
    pump();
  }

  /** Records the message taken and frees its slot; false when the lane stops (the message was abandoned). */
  function finish(step: Step): boolean {
    const message = taken!;
    taken = takenInbound = takenRun = undefined;
    if (slot.held) ctx.slots.release();
    slot.held = false;
    record(message, step);
    if (step !== ABANDONED) return true;
    halt();
    return false;
  }

  /** The lane stops running; it runs again at once if work came meanwhile. */
  function halt(): void {
    running = false;
    if ((accepting && waiting() > 0) || failures > 0) kick();
    else settleIdle();
  }

  /** A bug, not a handler's failure: the message taken is abandoned (not committed), and the lane runs again on the next turn. */
  function laneFailed(error: unknown): void {
    ctx.logger.error({ topic, partition, err: error }, 'partition lane failed');
    const message = taken;
    taken = takenInbound = takenRun = undefined;
    if (slot.held) ctx.slots.release();
    slot.held = false;
    running = false;
    try {
      if (message) record(message, ABANDONED);
    } catch (again) {
      ctx.logger.error({ topic, partition, err: again }, 'partition lane failed to finish its message');
    }
    // Not at once: a failure that repeats would recurse.
    setImmediate(() => {
      if (!running) halt();
    });
  }

  function kick(): void {
    if (running) return;
    running = true;
    pump();
  }

  const lane: PartitionLane = {
    topic,
    partition,
    nextOffset: undefined,
    get owned() {
      return owned;
    },
    push(messages) {
      if (!accepting) return;
      // What was taken is dropped before the queue grows: at most as much again as is waiting.
      if (head > 0 && head >= waiting()) {
        queue.copyWithin(0, head);
        queue.length -= head;
        head = 0;
      }
      queue.push(...messages);
      kick();
    },
    stop() {
      accepting = false;
      abort.abort();
      // The message running left the queue when it started; it and those under way still finish.
      const dropped = waiting();
      queue.length = head = 0;
      return dropped;
    },
    revoke() {
      owned = false;
      return lane.stop();
    },
    idle: () => (!running && handled.length === 0 ? Promise.resolve() : new Promise((resolve) => idlers.push(resolve))),
  };
  return lane;
}
