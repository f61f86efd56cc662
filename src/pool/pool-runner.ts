import type { MessagePort } from 'node:worker_threads';
import { headersToStrings, type CodecName } from '../kafka/codec.js';
import { deliverySettings } from '../delivery.js';
import { liveConsumerStats, type ConsumerRunner, type ConsumerRunnerOptions, type ConsumerStats } from '../kafka/consumer-runner.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { createFetchBuffer } from '../kafka/fetch-buffer.js';
import { createFlowControl } from '../kafka/flow-control.js';
import { createGroupConsumer } from '../kafka/group-consumer.js';
import type { Requester } from '../kafka/request-reply.js';
import type { PoolHealth, WorkerData } from '../protocol.js';
import { createDispatcher, type Job, type Lane } from './dispatcher.js';
import { reviveError, type PoolThreadData } from './messages.js';
import { poolSettings, type ConcurrencyOptions } from './settings.js';
import { statePortSource, type StatePortSource } from './state-ports.js';
import { MESSAGES_PER_THREAD, createThreadPool, type ThreadPool, type ThreadPoolOptions } from './thread-pool.js';

export interface PoolRunnerOptions extends Omit<ConsumerRunnerOptions, 'handle' | 'codec' | 'schema'> {
  concurrency: ConcurrencyOptions;
  /** What the pool threads need to load the service (the limits come from `delivery`). */
  thread: Omit<PoolThreadData, 'maxMessageBytes' | 'progress'>;
  statePort: StatePortSource;
  request?: ThreadPoolOptions['request'];
  /** How long the pool threads may take to set up (default 60 s). */
  readyTimeoutMs?: number;
  /** The compiled task entry (tests). */
  filename?: string;
}

export interface PoolRunner extends ConsumerRunner {
  health(): PoolHealth;
}

/** A copy of exactly these bytes: kafkajs's are views of the whole fetch response, which structured clone would copy entire. */
const own = (bytes: Buffer | null | undefined) => (bytes ? new Uint8Array(bytes) : null);

/**
 * Consumption with the handler in a thread pool (`consumes.concurrency`): this worker's thread
 * only fetches, dispatches and commits, so CPU-heavy handlers use as many threads as the pool
 * has — beyond the one-consumer-per-partition limit — and never stall fetching or heartbeats.
 *
 * Fetching runs ahead (eachBatch hands messages to the dispatcher and returns), bounded by
 * `maxInFlight`: flow-control.ts pauses the partitions while that many are unfinished. Offsets
 * are committed by this runner, never by kafkajs, and only up to the contiguous prefix of
 * finished messages of each partition, so a commit never passes unfinished work. On a rebalance
 * nothing new starts until the group is joined again; revoked partitions' work finishes
 * uncommitted. Draining lets the attempts running finish and commits them, and abandons the rest.
 */
export function createPoolRunner(options: PoolRunnerOptions): PoolRunner {
  const { logger, sender } = options;
  const delivery = deliverySettings(options.delivery);
  const settings = poolSettings(options.concurrency, delivery.maxInFlight);
  let pool: ThreadPool | undefined;
  let draining = false;
  /** Partitions this member owned at the last assignment, to drop what is held for revoked ones. */
  let owned: { topic: string; partition: number }[] = [];

  const group = createGroupConsumer({
    ...options,
    fromBeginning: options.fromBeginning ?? true,
    commit: delivery.commit,
    isAssigned: (topic, partition) => dispatcher.lane(topic, partition)?.current === true,
    onAssigned(assigned) {
      for (const was of owned)
        if (!assigned.some((tp) => tp.topic === was.topic && tp.partition === was.partition)) buffer.drop(was.topic, was.partition);
      owned = assigned;
      dispatcher.assign(assigned);
      flow.assign(assigned);
      logger.debug({ partitions: assigned.length }, 'partitions assigned to the pool');
      dispatcher.resume();
    },
    onRebalancing() {
      if (!draining) dispatcher.pause();
    },
    onLost() {
      dispatcher.assign([]);
      flow.assign([]);
      dispatcher.resume();
    },
    async eachBatch({ batch, resolveOffset }) {
      const lane = dispatcher.lane(batch.topic, batch.partition);
      if (draining || !lane?.current) return;
      buffer.accept(lane, batch, resolveOffset);
    },
  });
  const { committer } = group;
  const flow = createFlowControl({
    maxInFlight: settings.maxInFlight,
    // The pool's window is shared by the partitions unless the service limits each one.
    maxInFlightPerPartition: options.delivery?.maxInFlightPerPartition ?? settings.maxInFlight,
    setPaused: group.setPaused,
  });
  const dispatcher = createDispatcher({
    mode: settings.mode,
    // A thread holds several messages: the one it runs and the next ones (thread-pool.ts).
    concurrency: settings.threads * MESSAGES_PER_THREAD,
    retry: delivery.retry,
    logger,
    park: (source, reason) => deadLetter(sender, source, reason, options.metrics),
    async execute({ lane, message, attempt, signal }: Job) {
      if (attempt === 1) options.metrics?.consumed(lane.topic);
      const started = performance.now();
      const result = await pool!.run(
        {
          topic: lane.topic,
          partition: lane.partition,
          offset: message.offset,
          timestamp: message.timestamp,
          key: own(message.key),
          value: own(message.value),
          headers: headersToStrings(message.headers),
          attempt,
        },
        signal,
      );
      if ('withdrawn' in result) return result;
      options.metrics?.processed(lane.topic, (performance.now() - started) / 1_000);
      return result.ok ? { ok: true } : { ok: false, rejected: result.rejected, error: reviveError(result.error) };
    },
    onFinished(topic, partition, commit) {
      flow.done(topic, partition, 1);
      if (partition !== undefined && commit !== undefined) committer.mark(topic, partition, commit);
      // Room freed here may be the worker's, not only this partition's: every held lane may go on.
      if (!draining) buffer.feed();
    },
  });
  const buffer = createFetchBuffer<Lane>({
    lane: (topic, partition) => {
      const lane = dispatcher.lane(topic, partition);
      return lane?.current ? lane : undefined;
    },
    room: (lane) => flow.room(lane.topic, lane.partition),
    take(lane, messages) {
      flow.add(lane.topic, lane.partition, messages.length);
      dispatcher.push(lane, messages);
    },
    holding: (lane, holding) => flow.hold(lane.topic, lane.partition, holding),
  });

  /** Nothing new is fetched or dispatched from here on; the attempts running may still finish. */
  function stopTaking(): void {
    draining = true;
    buffer.clear();
    flow.stop();
    dispatcher.stop();
  }

  const d = dispatcher.stats;
  const stats: ConsumerStats = liveConsumerStats({
    delivery: d,
    inFlight: () => d.inFlight,
    flow,
    committer,
    rebalances: () => group.rebalances,
  });

  return {
    stats,
    health() {
      const threads = pool?.health();
      // Handed to the pool: one runs per thread, the rest wait in a thread (MESSAGES_PER_THREAD) and count as queued.
      const running = Math.min(d.running, threads?.threads ?? 0);
      return {
        mode: settings.mode,
        threads: threads?.threads ?? 0,
        maxThreads: settings.threads,
        inFlight: d.inFlight,
        maxInFlight: settings.maxInFlight,
        running,
        queued: d.queued + (d.running - running),
        waitingOnKey: d.waitingOnKey,
        retrying: d.retrying,
        completed: threads?.completed ?? 0,
        busyMs: threads?.busyMs ?? 0,
        utilization: threads?.utilization ?? 0,
        threadExits: threads?.threadExits ?? 0,
      };
    },
    async start() {
      pool = createThreadPool({
        threads: settings.threads,
        data: { ...options.thread, maxMessageBytes: delivery.maxMessageBytes },
        statePort: options.statePort,
        request: options.request,
        logger,
        onFatal: options.onFatal,
        filename: options.filename,
      });
      try {
        await pool.ready(options.readyTimeoutMs ?? 60_000);
      } catch (error) {
        await pool.close(1_000);
        throw error;
      }
      await group.start();
    },
    async drain() {
      stopTaking();
      await dispatcher.idle();
      await group.stop();
      await pool?.close();
    },
    async abandon() {
      stopTaking();
      await group.stop();
    },
  };
}

/**
 * The pool runner of a supervisor's consumer worker: the consumer options it shares with the
 * plain runner, plus its WorkerData (what the pool threads load), its requester and its port to
 * the supervisor (state for the threads).
 */
export function createWorkerPoolRunner({
  data,
  requester,
  parent,
  ...consumer
}: Omit<ConsumerRunnerOptions, 'handle' | 'codec' | 'schema'> & {
  data: WorkerData;
  requester: Pick<Requester, 'request'>;
  parent: MessagePort;
}): PoolRunner {
  return createPoolRunner({
    ...consumer,
    concurrency: consumer.delivery?.concurrency ?? {},
    thread: {
      workerId: data.workerId,
      service: data.service,
      modulePath: data.modulePath,
      tracingModule: data.tracingModule,
      groupId: data.consumes?.groupId,
      brokers: data.brokers,
      clientId: data.kafka.clientId,
      options: data.options,
      logLevel: data.logLevel,
      pretty: data.pretty,
    },
    statePort: statePortSource(parent),
    request: (topic, value, { codec, ...options }) =>
      requester.request(topic, value, { ...options, codec: codec as CodecName | undefined }),
  });
}
