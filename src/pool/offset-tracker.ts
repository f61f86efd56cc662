import { nextOffset } from '../kafka/offset-committer.js';

/**
 * One partition's messages taken for the pool, in offset order, and which of them finished.
 * Handlers finish out of order; the offset to commit is the end of the contiguous finished
 * prefix, so a commit never passes a message whose handler has not finished. Works on positions,
 * not offset arithmetic: offsets can have gaps (compaction, transaction markers).
 */
export interface OffsetTracker {
  /** Registers the next message taken (offsets must rise); returns its ticket. */
  add(offset: string): number;
  /**
   * Marks a ticket finished. Returns the offset to commit (the last offset of the finished
   * prefix + 1, as Kafka commits it) when the prefix moved, otherwise undefined.
   */
  complete(ticket: number): string | undefined;
  /** Tickets added and not yet inside the committed prefix. */
  readonly pending: number;
}

export function createOffsetTracker(): OffsetTracker {
  // offsets[i] / done[i] belong to ticket base + i; entries before `head` are in the prefix.
  let offsets: string[] = [];
  let done: boolean[] = [];
  let base = 0;
  let head = 0;

  function compact(): void {
    // Amortised: drop the prefix once it is most of the arrays.
    if (head < 1_024 || head * 2 < offsets.length) return;
    offsets = offsets.slice(head);
    done = done.slice(head);
    base += head;
    head = 0;
  }

  return {
    add(offset) {
      offsets.push(offset);
      done.push(false);
      return base + offsets.length - 1;
    },
    complete(ticket) {
      const index = ticket - base;
      if (index < head || index >= offsets.length || done[index]) return undefined;
      done[index] = true;
      if (index !== head) return undefined;
      while (head < offsets.length && done[head]) head++;
      const commit = nextOffset(offsets[head - 1]!);
      compact();
      return commit;
    },
    get pending() {
      return offsets.length - head;
    },
  };
}
