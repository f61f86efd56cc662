import type { Admin } from 'kafkajs';
import { TimeoutError } from '../../src/errors.js';

/**
 * Consumer lag of a group on a topic: the end offsets minus the group's committed offsets, summed
 * over partitions. It is what an operator's lag dashboard shows; committed offsets trail what the
 * workers already handled by up to one fetch, so lag is never below the work in the workers' hands.
 */
export async function consumerLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const byPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  let lag = 0;
  for (const end of ends) {
    const at = byPartition.get(end.partition) ?? -1;
    // -1: nothing committed yet, so everything from the log start is still to do.
    lag += Math.max(0, Number(end.high) - (at < 0 ? Number(end.low) : at));
  }
  return lag;
}

/** Waits until the group is stable with `members` members that all hold partitions. */
export async function waitForStableGroup(admin: Admin, groupId: string, members: number, { timeoutMs = 60_000 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    if (group?.state === 'Stable' && group.members.length === members && group.members.every((m) => m.memberAssignment.length > 0)) return;
    if (Date.now() > deadline) {
      throw new TimeoutError(
        `Consumer group ${groupId} did not settle with ${members} members within ${timeoutMs} ms (state ${group?.state ?? 'unknown'}, ${group?.members.length ?? 0} members): is the broker overloaded? See the workers' logs.`,
        { context: { groupId } },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
