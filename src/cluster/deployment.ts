import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { z } from 'zod';
import { connectAdmin, type AdminClient } from '../admin/client.js';
import { describeError, WharfError } from '../errors.js';
import { consumerConfig, createKafka } from '../kafka/client.js';
import type { Logger } from '../log.js';
import { openChangelogTopic } from '../persist/changelog.js';
import { DEFAULT_STATE_PARTITIONS } from '../persist/open.js';
import { checkPersistedCall, createNameMatcher, partitionOf, PERSISTED_KINDS } from '../state/changelog-records.js';
import { isStateKind, type ObjectInit } from '../state/messages.js';
import type { SharedRoute, StateStore } from '../state/store.js';
import type { StateKind } from '../state/types.js';
import { decodeAssignment, decodeMemberInfo, stateOwnerAssigner, type MemberInfo, type Owner } from './assigner.js';
import { createOwnedPartitions, type RestoreProgress } from './partitions.js';
import { createSharedView, type SharedView } from './shared-view.js';
import { createWatches } from './watches.js';

export type { SharedView } from './shared-view.js';

/**
 * A deployment: every supervisor started with the same `cluster.name` against one Kafka cluster
 * (docs/cluster.md). The objects they persist are ONE store, split over the changelog topic's
 * partitions (an object lives in the partition its name hashes to). Kafka's group protocol, over
 * the changelog topic, gives each partition to one member, its owner; the owner restores the
 * partition from the changelog before it serves it, and writes it in transactions under the
 * partition's transactional id, which fences any earlier owner (a write of a supervisor that lost
 * the partition fails instead of landing). A call on a shared object whose partition another member
 * owns is routed there over the admin protocol (HMAC key, Unix socket or TCP). Each call carries an
 * operation id that the owner records in the changelog with the change, so a call retried on a new
 * owner after a failover is applied exactly once.
 */
export interface DeploymentOptions {
  /** The deployment's name (`cluster.name`); its group is `wharf.cluster.<name>`. */
  name: string;
  /** The changelog topic. */
  topic: string;
  /** Partitions the changelog topic is created with when missing (default 12); an existing topic keeps its count. */
  partitions?: number;
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
  /** Group session timeout: how long a dead owner keeps its partitions before another member takes them (default 10 s). */
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
  /** The changelog topic's partitions: the most members that can own a share of the state. */
  partitions: number;
  /** This member. */
  tag: string;
  role: 'owner' | 'standby' | 'joining';
  /** Whether this member serves a part of the shared state now (owner and restored). */
  serving: boolean;
  /** The partitions this member serves now. */
  served: number[];
  members: MemberStatus[];
  /** The last restore this member made: records read, objects, how long, which partitions. */
  restored?: { records: number; ms: number; objects: number; at: string; partitions: number[] };
  /** The restore under way on this member: its partitions, records read so far, since when. */
  restoring?: RestoreProgress;
  /** Partitions this member took over (restores) and gave up. */
  acquisitions: number;
  losses: number;
}

export interface Deployment {
  readonly tag: string;
  /** For the front store: every call on a shared object goes through it (createStateStore's `shared`). */
  readonly route: SharedRoute;
  /** For the admin socket: whole shared objects, read and written on their owners. */
  readonly view: SharedView;
  /** Joins the group advertising `address`; resolves once this member has restored what the group gave it. */
  join(advertise: { address: string; keyFile?: string }, timeoutMs?: number): Promise<void>;
  /** The changelog topic's partition count (known once joined). */
  partitions(): number | undefined;
  /** The partition an object of this name lives in. */
  partitionOf(name: string): number;
  /** The partitions this member serves now. */
  served(): number[];
  /** The stores of the partitions this member serves now. */
  ownedStores(): StateStore[];
  /** The last restore this member made, if it ever owned a partition. */
  lastRestore(): DeploymentStatus['restored'];
  status(): Promise<DeploymentStatus>;
  /** `cluster.call`, `cluster.release`, `cluster.state` and `cluster.status`, for the admin socket. */
  adminMethods(): Record<string, (params: unknown) => Promise<unknown>>;
  /** Leaves the group (other members take over at once), after the last writes are acknowledged. */
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
  const tag = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const isShared = createNameMatcher(persist);
  const kafka: Kafka = createKafka({ brokers, logger: options.logger, clientId: `${clientId}-cluster` });

  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let advertised: { address: string; keyFile?: string } | undefined;
  let role: DeploymentStatus['role'] = 'joining';
  let memberId: string | undefined;
  let closed = false;
  /** The changelog topic's partitions, known once joined. */
  let count: number | undefined;
  /** The partitions this member owns. */
  const owned = createOwnedPartitions({
    kafka,
    topic,
    name,
    persist,
    isShared,
    lingerMs,
    logger: options.logger,
    onWriteFailed: (partition, changelog) =>
      enqueue(async () => {
        // A late failure of a changelog given up already must not drop a newer ownership.
        if (owned.get(partition)?.changelog !== changelog) return;
        await lose([partition], 'a write of its changelog failed');
        retake();
      }),
  });
  /** Rebalances begun; an assignment serves only if no rebalance began after it was made. */
  let rebalances = 0;
  let restored: DeploymentStatus['restored'];
  let acquisitions = 0;
  let losses = 0;
  /** Transitions (take over, give up) run one at a time, in the order the group decided them. */
  let transitions: Promise<void> = Promise.resolve();
  let markJoined: () => void = () => undefined;
  let failJoin: (error: unknown) => void = () => undefined;
  const joined = new Promise<void>((resolve, reject) => ((markJoined = resolve), (failJoin = reject)));
  joined.catch(() => undefined);
  /** Remote holders (workers of other members) seen by this owner, by member tag. */
  const remoteHolders = new Map<string, Set<string>>();
  /** Admin connections to other members, by address. */
  const peers = new Map<string, Promise<AdminClient>>();
  /** Who owns which partition, as the group said last (read with describeGroups; dropped when a call finds it stale). */
  let owners: Promise<Map<number, Owner>> | undefined;
  let opSeq = 0;
  const partitionOfName = (objectName: string) => partitionOf(objectName, count ?? 1);
  const servedHere = (partition: number) => owned.serving(partition);
  /** A holder as the owner knows it: this member's tag, then the worker's id (locks remember it across owners). */
  const holderOf = (holderId: string) => `${tag}/${holderId}`;
  function noteHolder(holder: string): void {
    const memberTag = holder.split('/')[0]!;
    let holders = remoteHolders.get(memberTag);
    if (!holders) remoteHolders.set(memberTag, (holders = new Set()));
    holders.add(holder);
  }
  /** That holder ended (its worker did): the partitions owned here free what it held and stop tracking it. */
  function releaseOwned(holder: string): void {
    for (const { store } of owned.held()) store.releaseHolder(holder);
    remoteHolders.get(holder.split('/')[0]!)?.delete(holder);
  }
  const info = (): MemberInfo => ({
    address: advertised?.address ?? '',
    keyFile: advertised?.keyFile,
    tag,
    pid: process.pid,
    // Held, not only served: during a rebalance this member stops serving, yet keeps its partitions
    // restored, and the assignor should leave them here.
    owned: owned.held().map((h) => h.partition),
  });

  function enqueue(step: () => Promise<void>): void {
    transitions = transitions.then(step).catch((error: unknown) => log.error({ err: describeError(error) }, 'cluster transition failed'));
  }

  /** Watches of shared objects, each partition's attached where it is served (created once `peer` and `ownerOf` exist, below). */
  const watches = createWatches({
    partitions: () => count,
    partitionOf: partitionOfName,
    serving: servedHere,
    ownerOf: (partition) => ownerOf(partition),
    peer: (target) => peer(target),
    isShared,
    closed: () => closed,
    onStale: () => (owners = undefined),
    log,
  });
  const reattach = (partitions?: readonly number[]) => watches.reattach(partitions);

  /** Takes partitions over: fence their earlier owners, replay them from the changelog, then serve them. */
  async function acquire(wanted: readonly number[], generation = rebalances): Promise<void> {
    if (closed || count === undefined) return;
    const taken = await owned.restore(wanted, count, () => generation === rebalances);
    if (!taken) return;
    if (closed) {
      await owned.release(taken.partitions);
      return;
    }
    acquisitions += taken.partitions.length;
    role = 'owner';
    owners = undefined;
    restored = { ...taken, objects: taken.objects.length, at: new Date().toISOString() };
    // The same line a supervisor of one always printed, saying now which partitions of which deployment it restored.
    log.info(
      {
        topic,
        owner: true,
        partitions: taken.partitions,
        records: taken.records,
        ms: taken.ms,
        objects: Object.fromEntries(taken.objects.map((o) => [o.name, o.size])),
      },
      `shared state restored from ${topic}`,
    );
    reattach(taken.partitions);
    void releaseDeparted();
  }

  /**
   * After a failed write this member gave a partition up. If the group still gives it to this member
   * (the write failed on the brokers, not because a newer owner fenced it), nobody else will serve
   * it until the group changes: take it again. A fenced member finds the partition given to another.
   */
  function retake(delayMs = 1_000): void {
    const timer = setTimeout(
      () =>
        enqueue(async () => {
          if (closed) return;
          let members: Awaited<ReturnType<typeof describeMembers>>;
          try {
            members = await describeMembers();
          } catch (error) {
            log.debug({ err: describeError(error) }, 'cannot read the group yet; trying again');
            return retake(Math.min(delayMs * 2, 10_000));
          }
          if (members.length === 0) return retake(Math.min(delayMs * 2, 10_000));
          const mine = members.find((m) => m.info.tag === tag)?.partitions ?? [];
          if (mine.some((p) => !owned.has(p))) await acquire(mine).catch(() => retake(Math.min(delayMs * 2, 10_000)));
        }),
      delayMs,
    );
    timer.unref();
  }

  /** Gives partitions up: calls waiting on them fail as retriable and are routed to their next owners. */
  async function lose(partitions: readonly number[], reason: unknown): Promise<void> {
    const given = await owned.release(partitions);
    if (given.length === 0) return;
    losses += given.length;
    owners = undefined;
    if (owned.held().length === 0 && role === 'owner') role = 'standby';
    log.warn(
      { reason: describeError(reason), partitions: given },
      `this supervisor no longer owns these partitions of the shared state of deployment ${name}`,
    );
    reattach(given);
  }

  async function onAssignment(partitions: number[], newMemberId: string, generation: number): Promise<void> {
    const sameMember = newMemberId === memberId;
    memberId = newMemberId;
    const keep = sameMember ? partitions.filter((p) => owned.has(p)) : [];
    const drop = owned
      .held()
      .map((h) => h.partition)
      .filter((p) => !keep.includes(p));
    if (drop.length > 0) await lose(drop, sameMember ? 'the group gave them to other members' : 'rejoined the group as a new member');
    owners = undefined;
    if (generation === rebalances) for (const p of keep) owned.get(p)!.serving = true;
    const failed = await acquire(partitions, generation).then(
      () => undefined,
      (error: unknown) => error,
    );
    // A changelog that is not wharf's state fails the start, as it would a supervisor alone: no retry mends it.
    if (failed instanceof WharfError && failed.code === 'ERR_STATE_RESTORE') {
      log.error({ err: describeError(failed) }, 'cannot restore the shared state');
      failJoin(failed);
    } else if (failed !== undefined) {
      log.warn({ err: describeError(failed) }, 'could not take the shared state over yet; trying again');
      retake();
    }
    role = owned.held().length > 0 ? 'owner' : 'standby';
    reattach();
    if (role === 'owner') void releaseDeparted();
    markJoined();
  }

  /**
   * The owner frees what workers of members that left the group held: their waits, and the locks
   * and permits the changelog says they hold (a lease of a dead supervisor ends with its group
   * session). Asked after every assignment that leaves this member an owner, and after a restore.
   */
  async function releaseDeparted(attempt = 0): Promise<void> {
    if (owned.held().length === 0) return;
    for (const { store } of owned.held()) for (const holder of leaseHolders(store)) noteHolder(holder);
    if (remoteHolders.size === 0) return;
    const members = await describeMembers().catch(() => []);
    // A group that has not settled (or does not list this member yet) says nothing about who left.
    if (!members.some((m) => m.info.tag === tag)) {
      if (attempt < 5) setTimeout(() => void releaseDeparted(attempt + 1), 1_000).unref();
      return;
    }
    const present = new Set(members.map((m) => m.info.tag));
    for (const [memberTag, holders] of remoteHolders) {
      if (present.has(memberTag)) continue;
      for (const holder of holders) for (const { store } of owned.held()) store.releaseHolder(holder);
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

  /** Who owns which partition, as describeGroups says: cached until a call finds it stale. */
  function loadOwners(): Promise<Map<number, Owner>> {
    if (owners) return owners;
    const loading = describeMembers().then((members) => {
      const map = new Map<number, Owner>();
      for (const m of members) for (const p of m.partitions) map.set(p, { ...m.info, self: m.info.tag === tag });
      return map;
    });
    owners = loading;
    // An unsettled group (no owners yet) is asked again next time.
    void loading.then(
      (map) => map.size === 0 && owners === loading && (owners = undefined),
      () => owners === loading && (owners = undefined),
    );
    return loading;
  }

  /** The member serving a partition now (undefined while none does). */
  async function ownerOf(partition: number): Promise<Owner | undefined> {
    if (servedHere(partition)) return { ...info(), self: true };
    return (await loadOwners()).get(partition);
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

  /**
   * Runs `here` on the partition's store when this member serves it, else `there` on its owner;
   * retried (the owner moved, or could not be reached) until `routeTimeoutMs`.
   */
  async function onOwner<T>(
    partition: () => number,
    here: (store: StateStore) => T | Promise<T>,
    there: (client: AdminClient) => Promise<T>,
    what: string,
  ): Promise<T> {
    const deadline = Date.now() + routeTimeoutMs;
    let lastError: unknown;
    for (let attempt = 0; ; attempt++) {
      if (closed) throw new WharfError('ERR_STATE_CLOSED', 'The state store is closed (the supervisor is stopping).');
      try {
        // Until this member joined, it does not know how many partitions there are: wait.
        if (count !== undefined) {
          const p = partition();
          const store = servedHere(p);
          if (store) return await here(store);
          const target = await ownerOf(p);
          if (target && !target.self) return await there(await peer(target));
        }
      } catch (error) {
        if (!retriable(error)) throw error;
        lastError = error;
        owners = undefined;
      }
      if (Date.now() > deadline) {
        throw new WharfError(
          'ERR_STATE_UNAVAILABLE',
          `No member of deployment ${name} served the shared state within ${routeTimeoutMs} ms` +
            (lastError ? ` (last: ${describeError(lastError)})` : '') +
            '. Is a supervisor of it running? npm run admin -- cluster',
          { retriable: true, cause: lastError, context: { object: what } },
        );
      }
      await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
    }
  }

  /** One call on a shared object, from a holder of this member: served here, or by the owner of its partition. */
  async function call(
    holderId: string,
    kind: StateKind,
    objectName: string,
    op: string,
    args: unknown[],
    init?: ObjectInit,
  ): Promise<unknown> {
    // Refused here, once: a call too large for its changelog would fail on every owner it was retried on.
    checkPersistedCall(kind, objectName, op, args);
    const opId = `${tag}:${++opSeq}`;
    const holder = holderOf(holderId);
    return onOwner(
      () => partitionOfName(objectName),
      (store) => store.executeOnce(opId, holder, kind, objectName, op, args, init),
      (client) => client.call('cluster.call', { opId, holder, kind, name: objectName, op, args, init }),
      objectName,
    );
  }

  /** The owner's side of a routed call: applied once per id, or refused (retriable) when this member does not serve it. */
  async function serveRouted(params: unknown): Promise<unknown> {
    const parsed = callParams.safeParse(params);
    if (!parsed.success) {
      throw new WharfError(
        'ERR_BAD_PARAMS',
        `cluster.call: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const { opId, holder, kind, name: objectName, op, args, init } = parsed.data;
    const store = servingStore(objectName);
    noteHolder(holder);
    return store.executeOnce(opId, holder, kind as StateKind, objectName, op, args, (init ?? undefined) as ObjectInit | undefined);
  }

  /** Every member serving a part of the state now, with the partitions it serves (this one included). */
  async function servingMembers(): Promise<Owner[]> {
    const byTag = new Map<string, Owner>();
    const known = await loadOwners().catch((error: unknown) => {
      log.debug({ err: describeError(error) }, 'cannot read the group: only this member’s part of the state is at hand');
      return new Map<number, Owner>();
    });
    for (const owner of known.values()) byTag.set(owner.tag, owner);
    if (owned.held().length > 0) byTag.set(tag, { ...info(), self: true });
    return [...byTag.values()];
  }

  const { view, serveState, servingStore } = createSharedView({
    deployment: name,
    partitionOf: partitionOfName,
    serving: servedHere,
    servingStores: () => owned.servingStores(),
    onOwner,
    servingMembers,
    peer,
    onStale: () => (owners = undefined),
    watchPartition: (partition, watchName, listener) => watches.add(watchName, listener, partition),
    log,
  });

  const route: SharedRoute = {
    covers: (objectName, kind) => PERSISTED_KINDS.has(kind) && isShared(objectName),
    call,
    release(holderId) {
      const holder = holderOf(holderId);
      releaseOwned(holder);
      // A worker of this member ended: what it holds on other owners (a lock, a permit, a wait) is freed there.
      void servingMembers()
        .then((members) =>
          Promise.all(members.filter((m) => !m.self).map(async (m) => (await peer(m)).call('cluster.release', { holder }))),
        )
        .catch((error: unknown) => log.debug({ err: describeError(error), holder }, 'could not tell the owners that a holder ended'));
    },
    watch(watchName, listener) {
      if (watchName !== undefined && !isShared(watchName)) return () => undefined;
      return watches.add(watchName, listener);
    },
  };

  async function status(): Promise<DeploymentStatus> {
    const members = await describeMembers().catch(() => []);
    const served = owned.served();
    const restoring = owned.restoring();
    return {
      name,
      group,
      topic,
      partitions: count ?? 0,
      tag,
      role,
      serving: served.length > 0,
      served: served.sort((a, b) => a - b),
      members: members.map((m) => ({ tag: m.info.tag, address: m.info.address, pid: m.info.pid, partitions: m.partitions })),
      ...(restored ? { restored } : {}),
      ...(restoring ? { restoring } : {}),
      acquisitions,
      losses,
    };
  }

  return {
    tag,
    route,
    view,
    async join(advertise, timeoutMs = 120_000) {
      advertised = advertise;
      // The changelog must exist (with its partitions) before the group can be given them.
      count = await openChangelogTopic(kafka, topic, options.logger, options.partitions ?? DEFAULT_STATE_PARTITIONS);
      if (options.partitions !== undefined && count !== options.partitions)
        log.warn(
          { topic, partitions: count, configured: options.partitions },
          `the changelog topic has ${count} partitions; the deployment's state is split over those (state.partitions applies when the topic is created)`,
        );
      reattach();
      consumer = kafka.consumer({
        ...consumerConfig(group, { sessionTimeout: options.sessionTimeoutMs ?? 10_000 }),
        partitionAssigners: [stateOwnerAssigner(topic, info)],
      });
      const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events;
      consumer.on(GROUP_JOIN, (event) => {
        const partitions = event.payload.memberAssignment[topic] ?? [];
        const generation = rebalances;
        enqueue(() => onAssignment(partitions, event.payload.memberId, generation));
      });
      // Eager rebalancing: until the next assignment, this member may not own what it owned.
      const pause = () => {
        rebalances++;
        owned.pause();
      };
      consumer.on(REBALANCING, pause);
      consumer.on(CRASH, pause);
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      // Membership only: owners restore with a reader of their own, so fetched records are not needed.
      await consumer.run({ eachBatch: async ({ batch }) => consumer!.pause([{ topic: batch.topic, partitions: [batch.partition] }]) });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new WharfError('ERR_STATE_UNAVAILABLE', `Deployment ${name} gave this member no share of its state within ${timeoutMs} ms.`, {
                retriable: true,
              }),
            ),
          timeoutMs,
        );
      });
      try {
        await Promise.race([joined, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    partitions: () => count,
    partitionOf: partitionOfName,
    served: () => owned.served(),
    ownedStores: () => owned.servingStores(),
    lastRestore: () => restored,
    status,
    adminMethods: () => ({
      'cluster.call': serveRouted,
      'cluster.state': serveState,
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
      const mine = owned.held();
      let failure: unknown;
      if (mine.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new WharfError('ERR_TIMEOUT', `Shared state changes were not acknowledged by ${topic} within ${timeoutMs} ms.`)),
            timeoutMs,
          );
        });
        await Promise.race([Promise.all(mine.map((h) => h.store.flush())), late]).catch((error: unknown) => (failure = error));
        clearTimeout(timer);
      }
      closed = true;
      watches.detachAll();
      // Leaving the group hands the partitions to other members at once, rather than after a session timeout.
      await consumer?.disconnect().catch(() => undefined);
      await owned.release(mine.map((h) => h.partition));
      for (const client of peers.values()) await client.then((c) => c.close()).catch(() => undefined);
      await admin?.disconnect().catch(() => undefined);
      if (failure) throw failure;
    },
  };
}
