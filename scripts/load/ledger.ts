/**
 * The fate of every request of a load run, by sequence number: sent, acknowledged by Kafka,
 * answered, dead-lettered. It is what makes "lost" and "duplicated" counts rather than guesses:
 * a request is lost when Kafka acknowledged it and neither its reply nor its dead letter came
 * back; a reply for a request already answered is a duplicate.
 */
const SENT = 1;
const ACKED = 2;
const ANSWERED = 3;
const DEAD_LETTERED = 4;

export type ReplyOutcome = 'first' | 'duplicate' | 'unknown';

export interface Ledger {
  /** Marks `seq` handed to the producer at `dueAt` (performance.now() milliseconds). */
  sent(seq: number, dueAt: number): void;
  /** Kafka acknowledged the request (acks=all). */
  acked(seq: number): void;
  /** The send failed for good: the request never reached Kafka, so it is an error, not a loss. */
  failed(seq: number): void;
  /** A reply arrived; the first one for `seq` says when the request was due. */
  answered(seq: number): { outcome: ReplyOutcome; dueAt: number };
  /** The service parked the request in its dead-letter topic. */
  deadLettered(seq: number): ReplyOutcome;
  readonly counts: LedgerCounts;
  /** Acknowledged requests with neither a reply nor a dead letter (the first `limit` of them). */
  unanswered(limit?: number): number[];
}

export interface LedgerCounts {
  sent: number;
  acked: number;
  sendErrors: number;
  answered: number;
  deadLettered: number;
  duplicates: number;
  /** Replies whose id this run never sent. */
  unknown: number;
}

export function createLedger(expected = 1 << 16): Ledger {
  let capacity = Math.max(1_024, Math.min(expected, 1 << 24));
  let states = new Uint8Array(capacity);
  let due = new Float64Array(capacity);
  let highest = -1;
  const counts: LedgerCounts = { sent: 0, acked: 0, sendErrors: 0, answered: 0, deadLettered: 0, duplicates: 0, unknown: 0 };

  function ensure(seq: number): void {
    if (seq < capacity) return;
    while (capacity <= seq) capacity *= 2;
    const grownStates = new Uint8Array(capacity);
    grownStates.set(states);
    const grownDue = new Float64Array(capacity);
    grownDue.set(due);
    states = grownStates;
    due = grownDue;
  }

  const known = (seq: number) => Number.isInteger(seq) && seq >= 0 && seq <= highest && states[seq]! >= SENT;

  return {
    counts,
    sent(seq, dueAt) {
      ensure(seq);
      states[seq] = SENT;
      due[seq] = dueAt;
      highest = Math.max(highest, seq);
      counts.sent++;
    },
    acked(seq) {
      // A reply can overtake the producer's acknowledgement: never move a request back.
      if (states[seq] === SENT) states[seq] = ACKED;
      counts.acked++;
    },
    failed(seq) {
      if (states[seq] === SENT) states[seq] = 0;
      counts.sendErrors++;
    },
    answered(seq) {
      if (!known(seq)) {
        counts.unknown++;
        return { outcome: 'unknown', dueAt: NaN };
      }
      if (states[seq] === ANSWERED) {
        counts.duplicates++;
        return { outcome: 'duplicate', dueAt: due[seq]! };
      }
      if (states[seq] === DEAD_LETTERED) counts.deadLettered--;
      states[seq] = ANSWERED;
      counts.answered++;
      return { outcome: 'first', dueAt: due[seq]! };
    },
    deadLettered(seq) {
      if (!known(seq)) {
        counts.unknown++;
        return 'unknown';
      }
      // A reply that made it wins over a later dead letter of a redelivered copy.
      if (states[seq] === ANSWERED || states[seq] === DEAD_LETTERED) return 'duplicate';
      states[seq] = DEAD_LETTERED;
      counts.deadLettered++;
      return 'first';
    },
    unanswered(limit = Number.MAX_SAFE_INTEGER) {
      const out: number[] = [];
      for (let seq = 0; seq <= highest && out.length < limit; seq++) if (states[seq] === SENT || states[seq] === ACKED) out.push(seq);
      return out;
    },
  };
}
