import kafkajs, { type GroupMemberAssignment, type PartitionAssigner } from 'kafkajs';

const { MemberMetadata, MemberAssignment } = kafkajs.AssignerProtocol;

/**
 * How the members of a deployment share the state changelog's partitions: Kafka's group protocol
 * runs it, this assigner (run by the group's leader) decides. Every member's join carries what it
 * tells the others — where it serves, and which partitions it serves now — so the others can route
 * to it (read back with describeGroups) and the leader can leave partitions where they are.
 */
export interface MemberInfo {
  /** The admin address routed calls reach this member at (a socket path, or host:port). */
  address: string;
  /** Its key file on this machine, when it has one (members on one machine use it); else WHARF_AUTHKEY. */
  keyFile?: string;
  /** A name that outlives the member's group ids (its holders at the owner are named by it). */
  tag: string;
  pid: number;
  /** Partitions it serves now (restored): they stay with it when the group changes. */
  owned: number[];
}

/** A member as routing sees it: its info, and whether it is this member. */
export type Owner = MemberInfo & { self: boolean };

export const ASSIGNER_NAME = 'WharfStateOwner';

export function encodeMemberInfo(topics: string[], info: MemberInfo): Buffer {
  return MemberMetadata.encode({ version: 1, topics, userData: Buffer.from(JSON.stringify(info)) });
}

/** A member's info from its group metadata; undefined when it is not a wharf member's. */
export function decodeMemberInfo(metadata: Buffer): MemberInfo | undefined {
  try {
    const decoded = MemberMetadata.decode(metadata);
    const info = JSON.parse(decoded?.userData.toString('utf8') ?? '') as Partial<MemberInfo>;
    if (typeof info.address !== 'string' || typeof info.tag !== 'string' || !Array.isArray(info.owned)) return undefined;
    return {
      address: info.address,
      keyFile: info.keyFile,
      tag: info.tag,
      pid: Number(info.pid),
      owned: info.owned.filter(Number.isInteger),
    };
  } catch {
    return undefined;
  }
}

/** The partitions of `topic` a member's assignment gives it. */
export function decodeAssignment(assignment: Buffer, topic: string): number[] {
  try {
    return MemberAssignment.decode(assignment)?.assignment[topic] ?? [];
  } catch {
    return [];
  }
}

/**
 * Sticky and balanced: a partition stays with the member serving it (the first by member id when
 * two claim it, after a split), up to an even share each; the rest go to the members with fewest.
 * Pure, so it is tested without a group.
 */
export function assignPartitions(partitions: number[], members: { memberId: string; owned: number[] }[]): Map<string, number[]> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const result = new Map<string, number[]>(sorted.map((m) => [m.memberId, []]));
  if (sorted.length === 0) return result;
  const quota = Math.ceil(partitions.length / sorted.length);
  const free = new Set(partitions);
  for (const member of sorted) {
    for (const partition of member.owned) {
      const mine = result.get(member.memberId)!;
      if (free.has(partition) && mine.length < quota) {
        mine.push(partition);
        free.delete(partition);
      }
    }
  }
  for (const partition of [...free].sort((a, b) => a - b)) {
    const [fewest] = [...result].sort((a, b) => a[1].length - b[1].length);
    fewest![1].push(partition);
  }
  return result;
}

/** The kafkajs assigner: `info()` is read at every join, so `owned` is current. */
export function stateOwnerAssigner(topic: string, info: () => MemberInfo): PartitionAssigner {
  return ({ cluster }) => ({
    name: ASSIGNER_NAME,
    version: 1,
    async assign({ members }): Promise<GroupMemberAssignment[]> {
      const partitions = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId);
      const claims = members.map((m) => ({ memberId: m.memberId, owned: decodeMemberInfo(m.memberMetadata)?.owned ?? [] }));
      return [...assignPartitions(partitions, claims)].map(([memberId, owned]) => ({
        memberId,
        memberAssignment: MemberAssignment.encode({ version: 1, assignment: { [topic]: owned }, userData: Buffer.alloc(0) }),
      }));
    },
    protocol: ({ topics }) => ({ name: ASSIGNER_NAME, metadata: encodeMemberInfo(topics, info()) }),
  });
}
