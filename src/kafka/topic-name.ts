import { z } from 'zod';

/**
 * Kafka's rule for topic names (its `Topic.validate`), in one place: the config, the state
 * changelog, the dead-letter admin and the sender all check names with it.
 */
export const TOPIC_NAME_RULE = "1–249 characters from a–z, A–Z, 0–9, '.', '_' and '-', and not '.' or '..'";

/** One regular expression, so a JSON Schema can carry it too. */
const TOPIC_NAME = /^(?!\.{1,2}$)[a-zA-Z0-9._-]{1,249}$/;

export function isTopicName(name: string): boolean {
  return TOPIC_NAME.test(name);
}

export const topicNameSchema = z.string().regex(TOPIC_NAME, `must be a Kafka topic name: ${TOPIC_NAME_RULE}`);
