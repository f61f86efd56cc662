import { workerCountError, type WharfConfig } from '../config/schema.js';
import type { LoadedService } from '../config/services.js';
import { TimeoutError, WharfError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { deadLetterTopic } from '../kafka/dead-letter.js';
import { ensureTopics } from '../kafka/topics.js';
import type { Logger } from '../log.js';
import type { WorkerMetrics } from '../metrics/registry.js';
import { createStateStore, type StateStore } from '../state/store.js';
import { createSupervisorEvents, type SupervisorEvents } from './events.js';
import { createRestartPolicy, type RestartPolicy } from './restart-policy.js';
import type { Role, ServiceHealth, SupervisorStatus } from '../status.js';
import { createWorkerSlot, type WorkerSlot } from './worker-slot.js';

export interface SupervisorOptions {
  config: WharfConfig;
  services: LoadedService[];
  brokers: string[];
  logger: Logger;
  store?: StateStore;
  /** Pretty logs in workers (a terminal). */
  pretty?: boolean;
  /** Workers count for `/metrics` (default true); false costs their hot path nothing. */
  metrics?: boolean;
}

export interface StopResult {
  ok: boolean;
  /** Workers that did not finish draining within the drain timeout. */
  unfinished: string[];
}

export interface Supervisor {
  readonly store: StateStore;
  readonly events: SupervisorEvents;
  /** Creates declared topics, spawns every worker and resolves once each is ready or its service failed. */
  start(): Promise<void>;
  /** Graceful shutdown: drain every worker within the drain timeout; those that do not finish are terminated. */
  stop(): Promise<StopResult>;
  /** Forced shutdown: terminate every thread now. */
  terminateAll(): Promise<void>;
  status(): SupervisorStatus;
  /**
   * Runs `count` workers of a role (WORKER_LIMITS). Resolves once the new ones are ready or the
   * surplus drained; rejects within `readyTimeoutMs` if a new worker cannot get ready (its
   * service failed in a crash loop, or the deadline passed: the new workers are then taken back).
   */
  scale(service: string, count: number, role?: Role): Promise<SupervisorStatus>;
  /** Terminates one worker thread as a crash would; the supervisor replaces it. */
  kill(workerId: string): Promise<void>;
  /** For `/metrics`: every worker slot ever run (scaled-down ones too, so their counters stay), with its counts. */
  metrics(): WorkerMetrics[];
}

interface ServiceRuntime {
  loaded: LoadedService;
  policy: RestartPolicy;
  slots: WorkerSlot[];
  failed: string | null;
  nextIndex: Record<Role, number>;
}

/**
 * The supervisor alone: worker threads, their lifecycle and restarts, over `store`. It runs no
 * `observe` hooks and opens no admin socket and no persistence: startWharf (src/app/) assembles
 * those around it, and is what `npm start`, the tests and library users call.
 */
export function createSupervisor({
  config,
  services,
  brokers,
  logger,
  store = createStateStore({ logger }),
  pretty = false,
  metrics = true,
}: SupervisorOptions): Supervisor {
  const log = logger.child({ component: 'supervisor' });
  const events = createSupervisorEvents(log);
  const settings = config.supervisor;
  const startedAt = Date.now();
  const runtimes = new Map<string, ServiceRuntime>();
  const timers = new Set<NodeJS.Timeout>();
  // Slots a failed scale takes back: a crash of theirs retires them instead of restarting them.
  const withdrawn = new WeakSet<WorkerSlot>();
  // Every slot ever added, in order, with its service's group: `/metrics` keeps counting what the scaled-down ones did.
  const everySlot: { slot: WorkerSlot; group: string | null }[] = [];
  let stopping = false;
  let health: NodeJS.Timeout | undefined;

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  function addSlot(runtime: ServiceRuntime, role: Role): WorkerSlot {
    const { loaded } = runtime;
    const index = runtime.nextIndex[role]++;
    const slot = createWorkerSlot({
      workerId: `${loaded.name}/${role}/${index}`,
      service: loaded.name,
      role,
      data: {
        modulePath: loaded.entry.module,
        tracingModule: config.tracing?.module,
        brokers,
        consumes: loaded.consumes,
        rate: loaded.rate,
        options: loaded.entry.options,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
        kafka: config.kafka,
        logLevel: logger.level,
        pretty,
        metrics,
      },
      store,
      resourceLimits: settings.resourceLimits,
      heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
      readyTimeoutMs: settings.readyTimeoutMs,
      logger,
      onReady: (s) => {
        const status = s.status();
        events.emit('worker:ready', {
          workerId: s.workerId,
          service: s.service,
          role: s.role,
          restarts: status.restarts,
          startMs: Date.now() - Date.parse(status.startedAt!),
        });
      },
      onCrash: (s, reason) => onCrash(runtime, s, reason),
    });
    runtime.slots.push(slot);
    everySlot.push({ slot, group: loaded.consumes?.groupId ?? null });
    slot.spawn();
    return slot;
  }

  function onCrash(runtime: ServiceRuntime, slot: WorkerSlot, reason: string): void {
    events.emit('worker:crashed', { workerId: slot.workerId, service: slot.service, role: slot.role, reason });
    if (stopping || runtime.failed || withdrawn.has(slot)) {
      slot.retire(reason);
      return;
    }
    const decision = runtime.policy.onCrash();
    if (decision.action === 'give-up') {
      runtime.failed = `${slot.workerId} ${decision.reason}; last: ${reason}`;
      log.error(
        { service: runtime.loaded.name, reason: runtime.failed },
        'service failed (crash loop): giving up on it, the rest keeps running',
      );
      slot.retire(reason);
      for (const other of runtime.slots)
        if (other !== slot) void other.drain().then(() => other.state === 'crashed' && other.retire('service failed'));
      events.emit('service:failed', { service: runtime.loaded.name, reason: runtime.failed });
      return;
    }
    events.emit('worker:restarting', {
      workerId: slot.workerId,
      service: slot.service,
      role: slot.role,
      delayMs: decision.delayMs,
      attempt: decision.attempt,
    });
    later(decision.delayMs, () => {
      if (!stopping && !runtime.failed && slot.state === 'crashed') slot.spawn();
    });
  }

  /**
   * Resolves once every slot of `added` is ready; rejects when one cannot get there: its service
   * failed (a crash loop), the supervisor began to stop, or `readyTimeoutMs` passed — then the
   * added slots are taken back, so the service runs as it did before the scale.
   */
  function untilReady(runtime: ServiceRuntime, added: WorkerSlot[], target: string): Promise<void> {
    if (added.length === 0) return Promise.resolve();
    const service = runtime.loaded.name;
    return new Promise<void>((resolve, reject) => {
      const waiting = new Set(added.map((s) => s.workerId));
      const offs = [
        events.on('worker:ready', (p) => {
          waiting.delete(p.workerId);
          if (waiting.size === 0) settle();
        }),
        events.on('service:failed', (p) => {
          if (p.service !== service) return;
          settle(
            new WharfError(
              'ERR_SERVICE_FAILED',
              `Scaling ${target} failed: ${service} crash-looped and was given up on (${p.reason}). Fix the service, then restart the supervisor to run it again.`,
              { context: { service } },
            ),
          );
        }),
        events.on('supervisor:draining', () =>
          settle(
            new WharfError('ERR_STOPPING', `Scaling ${target} did not finish: the supervisor is shutting down.`, { context: { service } }),
          ),
        ),
      ];
      const timer = setTimeout(() => {
        const late = added.filter((s) => s.state !== 'ready').map((s) => s.status());
        const why = late.map((w) => `${w.workerId} ${w.lastError ? `(last error: ${w.lastError})` : `(${w.state})`}`).join(', ');
        for (const slot of added) void withdraw(runtime, slot, 'scale timed out');
        settle(
          new TimeoutError(
            `Scaling ${target} timed out: not ready within ${settings.readyTimeoutMs} ms (supervisor.readyTimeoutMs): ${why}. The ${added.length} added worker${added.length === 1 ? ' was' : 's were'} stopped; \`npm run admin -- workers\` shows the service.`,
            { context: { service, workers: late.map((w) => w.workerId) } },
          ),
        );
      }, settings.readyTimeoutMs);
      function settle(error?: WharfError): void {
        clearTimeout(timer);
        offs.forEach((off) => off());
        if (error) reject(error);
        else resolve();
      }
    });
  }

  /** Takes a slot out of its service for good: no restart; its thread, if any, drained or ended. */
  async function withdraw(runtime: ServiceRuntime, slot: WorkerSlot, reason: string): Promise<void> {
    withdrawn.add(slot);
    if (slot.state === 'crashed')
      slot.retire(reason); // waiting out a restart delay
    else if (slot.state === 'starting')
      await slot.terminate(reason); // its exit is a crash, which retires it
    else if (slot.state === 'ready') await slot.drain();
    if (slot.state === 'crashed') slot.retire(reason);
    runtime.slots = runtime.slots.filter((s) => s !== slot || s.state !== 'stopped');
  }

  function serviceHealth(runtime: ServiceRuntime): ServiceHealth {
    if (runtime.failed) return 'failed';
    const active = runtime.slots.filter((s) => s.state !== 'stopped');
    if (active.length === 0) return 'stopped';
    if (active.every((s) => s.state === 'ready')) return 'healthy';
    if (active.every((s) => s.state === 'starting')) return 'starting';
    return 'degraded';
  }

  function status(): SupervisorStatus {
    const all = [...runtimes.values()];
    const workers = all.flatMap((r) => r.slots.map((s) => s.status()));
    return {
      pid: process.pid,
      startedAt: new Date(startedAt).toISOString(),
      uptimeMs: Date.now() - startedAt,
      brokers,
      services: all.map((r) => {
        const mine = workers.filter((w) => w.service === r.loaded.name);
        const active = mine.filter((w) => w.state !== 'stopped');
        return {
          name: r.loaded.name,
          health: serviceHealth(r),
          reason: r.failed,
          workers: {
            consumer: active.filter((w) => w.role === 'consumer').length,
            producer: active.filter((w) => w.role === 'producer').length,
          },
          handled: mine.reduce((sum, w) => sum + w.handled, 0),
          restarts: mine.reduce((sum, w) => sum + w.restarts, 0),
        };
      }),
      workers,
    };
  }

  function settled(): boolean {
    return [...runtimes.values()].every((r) => r.failed || r.slots.every((s) => s.state === 'ready' || s.state === 'stopped'));
  }

  return {
    store,
    events,
    status,
    metrics: () => everySlot.map(({ slot, group }) => ({ status: slot.status(), group, ...slot.metrics() })),
    async start() {
      const kafka = createKafka({ brokers, logger: log, clientId: `${config.kafka.clientId}-supervisor` });
      // Declared topics, consumed ones (subscribing to a missing topic races its auto-creation), and
      // their dead-letter topics; each once, the first declaration winning.
      const consumed = services.flatMap((s) => s.consumes?.topics ?? []);
      const wanted = [
        ...services.flatMap((s) => s.topics),
        ...consumed.map((topic) => ({ topic })),
        ...consumed.map((t) => ({ topic: deadLetterTopic(t) })),
      ];
      const topics = wanted.filter((spec, i) => wanted.findIndex((other) => other.topic === spec.topic) === i);
      await ensureTopics(kafka, topics, log);
      for (const loaded of services) {
        const runtime: ServiceRuntime = {
          loaded,
          policy: createRestartPolicy(settings.restart),
          slots: [],
          failed: null,
          nextIndex: { consumer: 0, producer: 0 },
        };
        runtimes.set(loaded.name, runtime);
        for (let i = 0; i < loaded.workers.consumer; i++) addSlot(runtime, 'consumer');
        for (let i = 0; i < loaded.workers.producer; i++) addSlot(runtime, 'producer');
      }
      health = setInterval(
        () => {
          const now = Date.now();
          for (const runtime of runtimes.values()) for (const slot of runtime.slots) slot.checkHealth(now);
        },
        Math.max(50, Math.min(1_000, settings.heartbeatTimeoutMs / 4)),
      );
      await new Promise<void>((resolve) => {
        if (settled()) return resolve();
        const offs = [events.on('worker:ready', check), events.on('service:failed', check)];
        function check() {
          if (!settled()) return;
          offs.forEach((off) => off());
          resolve();
        }
      });
    },
    async stop() {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const all = [...runtimes.values()].flatMap((r) => r.slots);
      // A slot waiting out its restart delay has no thread to drain.
      for (const slot of all) if (slot.state === 'crashed') slot.retire('stopped while waiting to restart');
      const slots = all.filter((s) => s.state !== 'stopped');
      events.emit('supervisor:draining', { workers: slots.length });
      // Producers first, then consumers, within one deadline: no new traffic starts while consumers
      // finish theirs, and a producer waiting for an answer (a request) still gets it.
      const deadline = Date.now() + settings.drainTimeoutMs;
      const drainAll = (group: typeof slots) =>
        Promise.all(
          group.map(async (slot) => {
            const finished = await Promise.race([
              slot.drain(),
              new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, deadline - Date.now())).unref()),
            ]);
            if (!finished) {
              await slot.terminate('did not drain within the drain timeout');
              if (slot.state === 'crashed') slot.retire('did not drain in time');
            }
            return { slot, finished };
          }),
        );
      const outcome = [
        ...(await drainAll(slots.filter((s) => s.role === 'producer'))),
        ...(await drainAll(slots.filter((s) => s.role === 'consumer'))),
      ];
      clearInterval(health);
      const unfinished = outcome.filter((o) => !o.finished).map((o) => o.slot.workerId);
      const result = { ok: unfinished.length === 0, unfinished };
      events.emit('supervisor:stopped', result);
      return result;
    },
    async terminateAll() {
      stopping = true;
      clearInterval(health);
      for (const timer of timers) clearTimeout(timer);
      await Promise.all([...runtimes.values()].flatMap((r) => r.slots).map((s) => s.terminate('forced shutdown')));
    },
    async kill(workerId) {
      const slot = [...runtimes.values()].flatMap((r) => r.slots).find((s) => s.workerId === workerId);
      if (!slot)
        throw new WharfError('ERR_UNKNOWN_WORKER', `No worker "${workerId}"; see \`npm run admin -- workers\`.`, { context: { workerId } });
      await slot.terminate('killed by an operator');
    },
    async scale(service, count, role = 'consumer') {
      const runtime = runtimes.get(service);
      if (!runtime)
        throw new WharfError('ERR_UNKNOWN_SERVICE', `No service "${service}": running services are ${[...runtimes.keys()].join(', ')}.`, {
          context: { service },
        });
      const invalid = workerCountError(service, role, count);
      if (invalid) throw invalid;
      if (stopping)
        throw new WharfError('ERR_STOPPING', `The supervisor is shutting down: scale ${service} once it runs again.`, {
          context: { service },
        });
      if (runtime.failed)
        throw new WharfError(
          'ERR_SERVICE_FAILED',
          `Service ${service} has failed (${runtime.failed}); restart the supervisor to run it again.`,
        );
      if (role === 'consumer' && !runtime.loaded.definition.consumes)
        throw new WharfError('ERR_BAD_SCALE', `Service ${service} consumes nothing.`);
      if (role === 'producer' && !runtime.loaded.definition.producer)
        throw new WharfError('ERR_BAD_SCALE', `Service ${service} has no producer role.`);
      const active = runtime.slots.filter((s) => s.role === role && s.state !== 'stopped');
      const added = Array.from({ length: Math.max(0, count - active.length) }, () => addSlot(runtime, role));
      const surplus = active.slice(count).reverse();
      await Promise.all([
        untilReady(runtime, added, `${service} to ${count} ${role} worker${count === 1 ? '' : 's'}`),
        ...surplus.map(async (s) => {
          await s.drain();
          if (s.state === 'crashed') s.retire('scaled down');
        }),
      ]);
      runtime.slots = runtime.slots.filter((s) => s.state !== 'stopped' || !surplus.includes(s));
      return status();
    },
  };
}
