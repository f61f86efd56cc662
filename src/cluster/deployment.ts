import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { z } from 'zod';
import { connectAdmin, type AdminClient } from '../admin/client.js';
import type { StateChange as WireChange } from '../admin/protocol.js';
import { describeError, WharfError } from '../errors.js';
import { consumerConfig, createKafka } from '../kafka/client.js';
import type { Logger } from '../log.js';
import { createChangelog, type Changelog } from '../persist/changelog.js';
import { createChangelogFold, createNameMatcher, PERSISTED_KINDS } from '../state/changelog-records.js';
import { isStateKind, type ObjectInit } from '../state/messages.js';
import { createStateStore, type SharedRoute, type StateStore } from '../state/store.js';
import type { StateChange, StateKind, StateListener } from '../state/types.js';
import { decodeAssignment, decodeMemberInfo, stateOwnerAssigner, type MemberInfo } from './assigner.js';

/**
 * A deployment: every supervisor started with the same `cluster.name` against one Kafka cluster
 * (docs/cluster.md). The objects they persist are ONE store: Kafka's group protocol, over the
 * changelog topic, makes one member its owner; the owner restores it from the changelog before it
 * serves, and writes in transactions under the deployment's transactional id, which fences any
 * earlier owner (a write of a supervisor that lost the state fails instead of landing). Every
 * other member routes calls on shared objects to the owner over the admin protocol (HMAC key,
 * Unix socket or TCP). Each call carries an operation id that the owner records in the changelog
 * with the change, so a call retried on a new owner after a failover is applied exactly once.
 */
export interface DeploymentOptions {
  /** The deployment's name (`cluster.name`); its group is `wharf.cluster.<name>`. */
  name: string;
  /** The changelog topic (one partition). */
  topic: string;
  /** Names (exact, `prefix*`, `*`) of the objects the deployment shares: the persisted ones. */
  persist: readonly string[];
  lingerMs?: number;
  brokers: readonly string[];
  clientId?: string;
  logger: Logger;
  /** The key for reaching other members when they have no key file here (WHARF_AUTHKEY). */
  authkey?: string;
  /** A routed call that finds no owner for this long fails with ERR_STATE_UNAVAILABLE (default 60 s). */
  routeTimeoutMs?: number;
  /** Group session timeout: how long a dead owner keeps the state before another member takes it (default 10 s). */
  sessionTimeoutMs?: number;
}

export interface MemberStatus {
  tag: string;
  address: string;
  pid: number;
  partitions: number[];
}

export interface DeploymentStatus {
  name: string;
  group: string;
  topic: string;
  /** This member. */
  tag: string;
  role: 'owner' | 'standby' | 'joining';
  /** Whether this member serves the shared state now (owner and restored). */
  serving: boolean;
  members: MemberStatus[];
  /** The last restore this member made: records read, objects, how long. */
  restored?: { records: number; ms: number; objects: number; at: string };
  /** Times this member took the state over (restores) and gave it up. */
  acquisitions: number;
  losses: number;
}

export interface Deployment {
  readonly tag: string;
  /** For the front store: every call on a shared object goes through it (createStateStore's `shared`). */
  readonly route: SharedRoute;
  /** Joins the group advertising `address`; resolves once an owner serves (this member, restored, or another). */
  join(advertise: { address: string; keyFile?: string }, timeoutMs?: number): Promise<void>;
  /** The owner's objects while this member serves them (admin reads), else undefined. */
  owned(): StateStore | undefined;
  /** The last restore this member made, if it ever owned the state. */
  lastRestore(): DeploymentStatus['restored'];
  /** The member serving now, as describeGroups says (undefined while none does). */
  owner(): Promise<(MemberInfo & { self: boolean }) | undefined>;
  status(): Promise<DeploymentStatus>;
  /** `cluster.call` and `cluster.status`, for the admin socket. */
  adminMethods(): Record<string, (params: unknown) => Promise<unknown>>;
  /** Leaves the group (another member takes over at once), after the last writes are acknowledged. */
  close(timeoutMs?: number): Promise<void>;
}

const RETRIABLE = new Set([
  'ERR_STATE_NOT_OWNER',
  'ERR_STATE_CLOSED',
  'ERR_STATE_PERSIST',
  'ERR_BUSY',
  'ERR_TIMEOUT',
  'ERR_NO_SUPERVISOR',
  'ERR_ADMIN_CLOSED',
  'ERR_ADMIN_PROTOCOL',
  'ERR_SHUTTING_DOWN',
  // A member on this machine removes its key file as it stops: it is going, ask the next owner.
  'ERR_NO_AUTHKEY',
]);

/** Whether a failed call may be sent again with the same id: the owner moved, or could not be reached. */
function retriable(error: unknown): boolean {
  if (!(error instanceof WharfError)) return true;
  return error.retriable || RETRIABLE.has(error.code);
}

const callParams = z.object({
  opId: z.string().min(1).max(200),
  holder: z.string().min(1).max(600),
  kind: z.string().refine(isStateKind, 'not a kind of state object'),
  name: z.string().min(1),
  op: z.string().min(1),
  args: z.array(z.unknown()),
  init: z.record(z.string(), z.unknown()).nullish(),
});

const releaseParams = z.object({ holder: z.string().min(1).max(600) });

/** The transactional id the owner of a deployment's state writes under: taking it fences the previous owner. */
export const stateTransactionalId = (deployment: string) => `wharf.cluster.${deployment}.state`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Who holds the store's locks and permits now (member-qualified holder ids, as the changelog restores them). */
function leaseHolders(store: StateStore): string[] {
  return store
    .describe()
    .filter((o) => (o.kind === 'lock' || o.kind === 'semaphore') && o.size > 0)
    .flatMap((o) => ((store.get(o.name)?.value as { holders?: { holderId: string }[] } | undefined)?.holders ?? []).map((h) => h.holderId));
}

export function createDeployment(options: DeploymentOptions): Deployment {
  const { name, topic, persist, lingerMs = 0, brokers, clientId = 'wharf', authkey, routeTimeoutMs = 60_000 } = options;
  const log = options.logger.child({ component: 'cluster', cluster: name });
  const group = `wharf.cluster.${name}`;
  const transactionalId = stateTransactionalId(name);
  const tag = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const isShared = createNameMatcher(persist);
  const kafka: Kafka = createKafka({ brokers, logger: options.logger, clientId: `${clientId}-cluster` });

  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let advertised: { address: string; keyFile?: string } | undefined;
  let role: DeploymentStatus['role'] = 'joining';
  let memberId: string | undefined;
  let closed = false;
  /** The state while this member owns it: its changelog writer (transactional) and the store. */
  let current: { changelog: Changelog; store: StateStore; serving: boolean } | undefined;
  let restored: DeploymentStatus['restored'];
  let acquisitions = 0;
  let losses = 0;
  /** Transitions (take over, give up) run one at a time, in the order the group decided them. */
  let transitions: Promise<void> = Promise.resolve();
  let served: () => void = () => undefined;
  const firstServed = new Promise<void>((resolve) => (served = resolve));
  /** Remote holders (workers of other members) seen by this owner, by member tag. */
  const remoteHolders = new Map<string, Set<string>>();
  /** Admin connections to other members, by address. */
  const peers = new Map<string, Promise<AdminClient>>();
  let cachedOwner: (MemberInfo & { self: boolean }) | undefined;
  let opSeq = 0;
  /** A holder as the owner knows it: this member's tag, then the worker's id (locks remember it across owners). */
  const holderOf = (holderId: string) => `${tag}/${holderId}`;
  function noteHolder(holder: string): void {
    const memberTag = holder.split('/')[0]!;
    let holders = remoteHolders.get(memberTag);
    if (!holders) remoteHolders.set(memberTag, (holders = new Set()));
    holders.add(holder);
  }
  /** That holder ended (its worker did): the owner frees what it held and stops tracking it. */
  function releaseOwned(holder: string): void {
    current?.store.releaseHolder(holder);
    remoteHolders.get(holder.split('/')[0]!)?.delete(holder);
  }
  /** Watches of shared objects, each attached to the owner of the moment (here, or over its admin socket). */
  const watches = new Set<Watch>();
  interface Watch {
    name: string | undefined;
    listener: StateListener;
    detach?: () => void;
    /** Bumped at every attach: a remote subscription that arrives after a newer attach is dropped. */
    epoch: number;
  }

  const info = (): MemberInfo => ({
    address: advertised?.address ?? '',
    keyFile: advertised?.keyFile,
    tag,
    pid: process.pid,
    // Held, not only served: during a rebalance this member stops serving, yet keeps the state
    // restored, and the assignor should leave it here.
    owned: current ? [0] : [],
  });

  function enqueue(step: () => Promise<void>): void {
    transitions = transitions.then(step).catch((error: unknown) => log.error({ err: describeError(error) }, 'cluster transition failed'));
  }

  /** (Re)subscribes a watch where the state is served now; changes made while no one served are not replayed. */
  function attach(watch: Watch): void {
    watch.detach?.();
    watch.detach = undefined;
    const epoch = ++watch.epoch;
    if (closed || !watches.has(watch)) return;
    const own = current?.serving ? current.store : undefined;
    if (own) {
      watch.detach = own.watch(watch.name, watch.listener);
      return;
    }
    void (async () => {
      for (let attempt = 0; epoch === watch.epoch && !closed; attempt++) {
        try {
          const target = await owner();
          if (target && !target.self) {
            const client = await peer(target);
            // The wire's change is the store's (kinds and keys as the owner's store made them).
            const forward = (change: WireChange) => {
              if (isShared(change.name)) watch.listener(change as StateChange);
            };
            const handle = await client.state.watch(watch.name, forward);
            if (epoch !== watch.epoch) return void handle.unsubscribe().catch(() => undefined);
            watch.detach = () => void handle.unsubscribe().catch(() => undefined);
            // The owner went away: follow the next one.
            void client.closed.then(() => epoch === watch.epoch && attach(watch));
            return;
          }
          if (target?.self && current?.serving) return attach(watch);
        } catch (error) {
          cachedOwner = undefined;
          log.debug({ err: describeError(error) }, 'a watch of shared state is waiting for an owner');
        }
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)));
      }
    })();
  }

  const reattachAll = () => {
    for (const watch of watches) attach(watch);
  };

  /** Takes the state over: fence earlier owners, replay the changelog, then serve. */
  async function acquire(): Promise<void> {
    if (closed || current) return;
    const started = Date.now();
    const changelog = createChangelog({ kafka, topic, logger: options.logger, transactionalId });
    await changelog.open();
    let store: StateStore;
    try {
      const fold = createChangelogFold(isShared);
      const records = await changelog.replay(fold.add);
      store = createStateStore({
        logger: options.logger,
        persist: {
          names: persist,
          restored: fold.snapshot(),
          restoredOps: fold.ops,
          lingerMs,
          sink: {
            write: (batch) =>
              changelog.write(batch).catch((error: unknown) => {
                enqueue(async () => {
                  // A late failure of a changelog given up already must not drop a newer ownership.
                  if (current?.changelog !== changelog) return;
                  await lose(error);
                  retake();
                });
                throw error;
              }),
          },
        },
      });
      restored = { records, ms: Date.now() - started, objects: store.describe().length, at: new Date().toISOString() };
    } catch (error) {
      await changelog.close().catch(() => undefined);
      throw error;
    }
    if (closed) {
      store.close();
      await changelog.close().catch(() => undefined);
      return;
    }
    current = { changelog, store, serving: true };
    acquisitions++;
    role = 'owner';
    cachedOwner = { ...info(), self: true };
    // The same line a supervisor of one always printed, saying now which deployment it owns the state of.
    log.info(
      {
        topic,
        owner: true,
        records: restored!.records,
        ms: restored!.ms,
        objects: Object.fromEntries(store.describe().map((o) => [o.name, o.size])),
      },
      `shared state restored from ${topic}`,
    );
    reattachAll();
    served();
    void releaseDeparted();
  }

  /**
   * After a failed write this member gave the state up. If the group still gives it to this member
   * (the write failed on the brokers, not because a newer owner fenced it), nobody else will serve
   * it until the group changes: take it again. A fenced member finds the state given to another.
   */
  function retake(delayMs = 1_000): void {
    const timer = setTimeout(
      () =>
        enqueue(async () => {
          if (closed || current) return;
          let members: Awaited<ReturnType<typeof describeMembers>>;
          try {
            members = await describeMembers();
          } catch (error) {
            log.debug({ err: describeError(error) }, 'cannot read the group yet; trying again');
            return retake(Math.min(delayMs * 2, 10_000));
          }
          if (members.length === 0) return retake(Math.min(delayMs * 2, 10_000));
          if (members.find((m) => m.info.tag === tag)?.partitions.includes(0))
            await acquire().catch(() => retake(Math.min(delayMs * 2, 10_000)));
        }),
      delayMs,
    );
    timer.unref();
  }

  /** Gives the state up: calls waiting on it fail as retriable and are routed to the next owner. */
  async function lose(reason: unknown): Promise<void> {
    const owned = current;
    if (!owned) return;
    current = undefined;
    owned.serving = false;
    losses++;
    cachedOwner = undefined;
    log.warn({ reason: describeError(reason) }, `this supervisor no longer owns the shared state of deployment ${name}`);
    owned.store.close();
    reattachAll();
    await owned.changelog.close().catch(() => undefined);
  }

  async function onAssignment(partitions: number[], newMemberId: string): Promise<void> {
    const keep = partitions.includes(0);
    const sameMember = newMemberId === memberId;
    memberId = newMemberId;
    if (keep && current && sameMember) {
      current.serving = true;
      role = 'owner';
      served();
      void releaseDeparted();
      return;
    }
    if (current) await lose(keep ? 'rejoined the group as a new member' : 'the group gave the state to another member');
    if (keep) {
      await acquire().catch((error: unknown) => {
        log.warn({ err: describeError(error) }, 'could not take the shared state over yet; trying again');
        retake();
      });
    } else {
      role = 'standby';
      cachedOwner = undefined;
      reattachAll();
      if (await owner()) served();
    }
  }

  /**
   * The owner frees what workers of members that left the group held: their waits, and the locks
   * and permits the changelog says they hold (a lease of a dead supervisor ends with its group
   * session). Asked after every assignment that leaves this member the owner, and after a restore.
   */
  async function releaseDeparted(attempt = 0): Promise<void> {
    const owned = current;
    if (!owned) return;
    for (const holder of leaseHolders(owned.store)) noteHolder(holder);
    if (remoteHolders.size === 0) return;
    const members = await describeMembers().catch(() => []);
    // A group that has not settled (or does not list this member yet) says nothing about who left.
    if (!members.some((m) => m.info.tag === tag)) {
      if (attempt < 5) setTimeout(() => void releaseDeparted(attempt + 1), 1_000).unref();
      return;
    }
    if (current !== owned) return;
    const present = new Set(members.map((m) => m.info.tag));
    for (const [memberTag, holders] of remoteHolders) {
      if (present.has(memberTag)) continue;
      for (const holder of holders) owned.store.releaseHolder(holder);
      remoteHolders.delete(memberTag);
      log.info({ member: memberTag, holders: holders.size }, 'released what the workers of a member that left held');
    }
  }

  async function describeMembers(): Promise<{ info: MemberInfo; partitions: number[] }[]> {
    if (!admin) {
      admin = kafka.admin();
      await admin.connect();
    }
    const { groups } = await admin.describeGroups([group]);
    const described = groups[0];
    if (!described || described.state !== 'Stable') return [];
    return described.members.flatMap((member) => {
      const memberInfo = decodeMemberInfo(member.memberMetadata);
      return memberInfo ? [{ info: memberInfo, partitions: decodeAssignment(member.memberAssignment, topic) }] : [];
    });
  }

  async function owner(): Promise<(MemberInfo & { self: boolean }) | undefined> {
    if (current?.serving) return { ...info(), self: true };
    if (cachedOwner) return cachedOwner;
    const found = (await describeMembers()).find((m) => m.partitions.includes(0));
    if (!found) return undefined;
    cachedOwner = { ...found.info, self: found.info.tag === tag };
    return cachedOwner;
  }

  function peer(target: MemberInfo): Promise<AdminClient> {
    let client = peers.get(target.address);
    if (!client) {
      client = connectAdmin({
        address: target.address,
        ...(target.keyFile ? { keyFile: target.keyFile } : authkey ? { authkey } : {}),
        timeoutMs: 5_000,
        callTimeoutMs: 30_000,
      });
      peers.set(target.address, client);
      const forget = () => {
        if (peers.get(target.address) === client) peers.delete(target.address);
      };
      client.then((c) => c.closed.then(forget), forget);
    }
    return client;
  }

  /** One call on a shared object, from a holder of this member: served here, or by the owner. */
  async function call(
    holderId: string,
    kind: StateKind,
    objectName: string,
    op: string,
    args: unknown[],
    init?: ObjectInit,
  ): Promise<unknown> {
    const opId = `${tag}:${++opSeq}`;
    const deadline = Date.now() + routeTimeoutMs;
    let lastError: unknown;
    for (let attempt = 0; ; attempt++) {
      if (closed) throw new WharfError('ERR_STATE_CLOSED', 'The state store is closed (the supervisor is stopping).');
      try {
        const serving = current?.serving ? current.store : undefined;
        if (serving) return await serving.executeOnce(opId, holderOf(holderId), kind, objectName, op, args, init);
        const target = await owner();
        if (target && !target.self) {
          const client = await peer(target);
          return await client.call('cluster.call', { opId, holder: holderOf(holderId), kind, name: objectName, op, args, init });
        }
      } catch (error) {
        if (!retriable(error)) throw error;
        lastError = error;
        cachedOwner = undefined;
      }
      if (Date.now() > deadline) {
        throw new WharfError(
          'ERR_STATE_UNAVAILABLE',
          `No member of deployment ${name} served the shared state within ${routeTimeoutMs} ms` +
            (lastError ? ` (last: ${describeError(lastError)})` : '') +
            '. Is a supervisor of it running? npm run admin -- cluster',
          { retriable: true, cause: lastError, context: { object: objectName } },
        );
      }
      await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
    }
  }

  /** The owner's side of a routed call: applied once per id, or refused (retriable) when this member does not serve. */
  async function serveRouted(params: unknown): Promise<unknown> {
    const parsed = callParams.safeParse(params);
    if (!parsed.success) {
      throw new WharfError(
        'ERR_BAD_PARAMS',
        `cluster.call: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const { opId, holder, kind, name: objectName, op, args, init } = parsed.data;
    const serving = current?.serving ? current.store : undefined;
    if (!serving) {
      throw new WharfError('ERR_STATE_NOT_OWNER', `This supervisor does not serve the shared state of deployment ${name} now.`, {
        retriable: true,
      });
    }
    noteHolder(holder);
    return serving.executeOnce(opId, holder, kind as StateKind, objectName, op, args, (init ?? undefined) as ObjectInit | undefined);
  }

  const route: SharedRoute = {
    covers: (objectName, kind) => PERSISTED_KINDS.has(kind) && isShared(objectName),
    call,
    release(holderId) {
      const holder = holderOf(holderId);
      if (current) return releaseOwned(holder);
      // A worker of this member ended: what it holds on the owner (a lock, a permit, a wait) is freed there.
      void owner()
        .then(async (target) => {
          if (target && !target.self) await (await peer(target)).call('cluster.release', { holder });
        })
        .catch((error: unknown) => log.debug({ err: describeError(error), holder }, 'could not tell the owner that a holder ended'));
    },
    watch(watchName, listener) {
      if (watchName !== undefined && !isShared(watchName)) return () => undefined;
      const watch: Watch = { name: watchName, listener, epoch: 0 };
      watches.add(watch);
      attach(watch);
      return () => {
        watches.delete(watch);
        watch.epoch++;
        watch.detach?.();
      };
    },
  };

  async function status(): Promise<DeploymentStatus> {
    const members = await describeMembers().catch(() => []);
    return {
      name,
      group,
      topic,
      tag,
      role,
      serving: current?.serving === true,
      members: members.map((m) => ({ tag: m.info.tag, address: m.info.address, pid: m.info.pid, partitions: m.partitions })),
      ...(restored ? { restored } : {}),
      acquisitions,
      losses,
    };
  }

  return {
    tag,
    route,
    async join(advertise, timeoutMs = 120_000) {
      advertised = advertise;
      consumer = kafka.consumer({
        ...consumerConfig(group, { sessionTimeout: options.sessionTimeoutMs ?? 10_000 }),
        partitionAssigners: [stateOwnerAssigner(topic, info)],
      });
      const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events;
      consumer.on(GROUP_JOIN, (event) => {
        const partitions = event.payload.memberAssignment[topic] ?? [];
        enqueue(() => onAssignment(partitions, event.payload.memberId));
      });
      // Eager rebalancing: until the next assignment, this member may not own what it owned.
      consumer.on(REBALANCING, () => {
        if (current) current.serving = false;
      });
      consumer.on(CRASH, () => {
        if (current) current.serving = false;
      });
      // The changelog must exist (with its one partition) before the group can be given it.
      const probe = createChangelog({ kafka, topic, logger: options.logger });
      await probe.open();
      await probe.close();
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      // Membership only: the owner restores with a reader of its own, so fetched records are not needed.
      await consumer.run({ eachBatch: async ({ batch }) => consumer!.pause([{ topic: batch.topic, partitions: [batch.partition] }]) });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new WharfError(
                'ERR_STATE_UNAVAILABLE',
                `No member of deployment ${name} served the shared state within ${timeoutMs} ms of joining.`,
                {
                  retriable: true,
                },
              ),
            ),
          timeoutMs,
        );
      });
      try {
        await Promise.race([firstServed, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    owned: () => (current?.serving ? current.store : undefined),
    lastRestore: () => restored,
    owner,
    status,
    adminMethods: () => ({
      'cluster.call': serveRouted,
      'cluster.release': async (params) => {
        const parsed = releaseParams.safeParse(params);
        if (!parsed.success) throw new WharfError('ERR_BAD_PARAMS', 'cluster.release: holder must be a member-qualified holder id.');
        releaseOwned(parsed.data.holder);
        return null;
      },
      'cluster.status': async () => status(),
    }),
    async close(timeoutMs = 30_000) {
      if (closed) return;
      const owned = current;
      let failure: unknown;
      if (owned) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new WharfError('ERR_TIMEOUT', `Shared state changes were not acknowledged by ${topic} within ${timeoutMs} ms.`)),
            timeoutMs,
          );
        });
        await Promise.race([owned.store.flush(), late]).catch((error: unknown) => (failure = error));
        clearTimeout(timer);
      }
      closed = true;
      // Leaving the group hands the state to another member at once, rather than after a session timeout.
      await consumer?.disconnect().catch(() => undefined);
      current = undefined;
      owned?.store.close();
      await owned?.changelog.close().catch(() => undefined);
      for (const client of peers.values()) await client.then((c) => c.close()).catch(() => undefined);
      await admin?.disconnect().catch(() => undefined);
      if (failure) throw failure;
    },
  };
}
