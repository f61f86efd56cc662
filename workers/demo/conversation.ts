/** The demo's shared vocabulary: topics, state names and the shape of one exchange. */
export const TOPICS = { requests: 'jarvis.requests', replies: 'tony.replies' } as const;

export const STATE = {
  /** n → Exchange: the conversation, one entry per question answered. */
  conversation: 'conversation',
  /** Questions Tony has numbered (the next n). */
  asked: 'tony.asked',
  sent: 'sent',
  replied: 'replied',
  /**
   * Questions asked again because no answer came in time: each may be answered twice, and the
   * answer to the earlier ask is then dropped as late (wharf counts those per worker in the
   * shared map `wharf.delivery`). The conversation still records one answer per question.
   */
  duplicates: 'duplicates',
} as const;

export interface Question {
  n: number;
  text: string;
  askedAt: number;
}

export interface Answer extends Question {
  reply: string;
  answeredBy: string;
}

export interface Exchange extends Answer {
  recordedAt: number;
}

const QUESTIONS = [
  'how is the suit holding up?',
  'run a diagnostic on the arc reactor.',
  'what is the weather over Malibu?',
  'any messages from Pepper?',
  'prepare the Mark 42.',
  'how many consumers are in the group?',
  'is the broker healthy?',
];

export function question(n: number): string {
  return `Jarvis, ${QUESTIONS[(n - 1) % QUESTIONS.length]} (#${n})`;
}

export function answer(text: string): string {
  return `Yes, Tony: ${text.replace(/^Jarvis, /, '').replace(/\?|\.(?= \(#)/, '')} — done.`;
}
