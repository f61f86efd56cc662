import { randomBytes } from 'node:crypto';
import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS } from '../../src/kafka/dead-letter.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, uniqueName, waitFor } from '../helpers.js';
import { deliveryTotals, produce, readAll } from './messaging-helpers.js';

const GOOD = 10_000;
const LIMIT = 64 * 1024;

/** Bad values of every kind, each with the reason code it must be parked with. */
function badValue(n: number): { value: Buffer | string | null; code: string; kind: string } {
  switch (n % 5) {
    case 0:
      return { value: `{"i": ${n}, "text": "unterminated`, code: 'ERR_DECODE', kind: 'invalid-json' };
    case 1:
      return { value: JSON.stringify({ i: `not a number ${n}`, text: 'x' }), code: 'ERR_SCHEMA', kind: 'schema' };
    case 2:
      return { value: n % 10 === 2 ? '' : null, code: 'ERR_DECODE', kind: 'empty' };
    // 0xff never starts valid UTF-8, so these bytes can never be read as JSON by accident.
    case 3:
      return { value: Buffer.concat([Buffer.from([0xff]), randomBytes(1 + (n % 200))]), code: 'ERR_DECODE', kind: 'random-bytes' };
    default:
      return n % 50 === 4
        ? { value: JSON.stringify({ i: n, text: 'y'.repeat(LIMIT) }), code: 'ERR_MESSAGE_TOO_LARGE', kind: 'too-large' }
        : { value: JSON.stringify({ text: 'missing i' }), code: 'ERR_SCHEMA', kind: 'schema-missing-field' };
  }
}

describe('bad input', () => {
  it(
    'parks 1,000 bad values of every kind with their reason while all 10,000 good ones are handled, with no crash',
    { timeout: 120_000 },
    async () => {
      const k = kafkaForTest();
      const topic = await createTopic(await k.admin(), uniqueName('mixed'), 4);
      const supervisor = await startSupervisor({
        services: [
          {
            module: SERVICE_MODULES.fixture('validated'),
            workers: { consumer: 2 },
            consumes: { topics: [topic], groupId: uniqueName('validated'), maxMessageBytes: LIMIT },
          },
        ],
        kafka: { clientId: uniqueName('wharf') },
      });
      const messages: Message[] = [];
      const expected = new Map<string, { code: string; kind: string }>();
      for (let i = 0, bad = 0; i < GOOD; i++) {
        messages.push({ key: `k${i % 32}`, value: JSON.stringify({ i, text: `good ${i}` }) });
        if (i % 10 === 9) {
          const { value, code, kind } = badValue(bad);
          expected.set(`bad-${bad}`, { code, kind });
          messages.push({ key: `k${i % 32}`, value, headers: { 'test-bad': `bad-${bad}` } });
          bad++;
        }
      }
      expect(expected.size).toBe(1_000);
      expect(new Set([...expected.values()].map((e) => e.kind))).toEqual(
        new Set(['invalid-json', 'schema', 'empty', 'random-bytes', 'too-large', 'schema-missing-field']),
      );
      await produce(await k.producer(), topic, messages, 250);

      const good = () => Object.keys((supervisor.store.get('good')?.value ?? {}) as object).length;
      await waitFor(() => good() === GOOD, { timeoutMs: 90_000, message: `${GOOD} good values handled` });
      const dead = await readAll(`${topic}.dlq`, expected.size);
      expect(dead).toHaveLength(expected.size);
      const byKind = new Map<string, number>();
      for (const d of dead) {
        const want = expected.get(d.headers['test-bad']!);
        expect(want, `dead letter ${d.headers['test-bad']}`).toBeDefined();
        expect(d.headers[DLQ_HEADERS.errorCode], `${want!.kind}: ${d.headers[DLQ_HEADERS.errorMessage]}`).toBe(want!.code);
        expect(d.headers[DLQ_HEADERS.attempts]).toBe('0');
        expect(d.headers[DLQ_HEADERS.errorMessage]!.length).toBeGreaterThan(0);
        byKind.set(want!.kind, (byKind.get(want!.kind) ?? 0) + 1);
      }
      expect(new Set(dead.map((d) => d.headers['test-bad'])).size).toBe(expected.size);
      // The reasons say what was wrong, in words an operator can act on.
      const reason = (kind: string) =>
        dead.find((d) => expected.get(d.headers['test-bad']!)!.kind === kind)!.headers[DLQ_HEADERS.errorMessage];
      expect(reason('invalid-json')).toMatch(/^value is not JSON: /);
      expect(reason('schema')).toMatch(/^value fails the schema: i: /);
      expect(reason('schema-missing-field')).toMatch(/^value fails the schema: i: /);
      expect(reason('empty')).toBe('empty value (expected JSON)');
      expect(reason('too-large')).toMatch(
        new RegExp(`^value of \\d+ bytes is over the ${LIMIT}-byte limit \\(consumes.maxMessageBytes\\)$`),
      );
      // The oversized value itself is kept in the dead-letter topic, so it can be replayed after a fix.
      expect(dead.find((d) => expected.get(d.headers['test-bad']!)!.kind === 'too-large')!.value!.length).toBeGreaterThan(LIMIT);

      // A rejection is counted before its dead letter is written: wait for the publication that has both.
      await waitFor(
        () =>
          deliveryTotals(supervisor.store).rejected === expected.size && deliveryTotals(supervisor.store).deadLettered === expected.size,
        { message: 'the rejections to be counted' },
      );
      expect(deliveryTotals(supervisor.store)).toMatchObject({
        rejected: expected.size,
        deadLettered: expected.size,
        retries: 0,
        errors: 0,
      });
      const status = supervisor.status();
      expect(status.workers.map((w) => [w.state, w.restarts])).toEqual([
        ['ready', 0],
        ['ready', 0],
      ]);
      expect(status.services[0]!.health).toBe('healthy');
    },
  );
});
