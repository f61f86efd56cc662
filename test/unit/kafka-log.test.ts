import { logLevel as KafkaLogLevel } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { kafkaLogCreator } from '../../src/log.js';

/** kafkajs's log lines as wharf's logger writes them, parsed. */
function bridge(level: 'info' | 'debug') {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (chunk: string) => void lines.push(JSON.parse(chunk)) });
  const log = kafkaLogCreator(logger)(KafkaLogLevel.DEBUG);
  return { lines, log };
}

const crash = {
  message: 'Crash: KafkaJSProtocolError: The coordinator is loading',
  groupId: 'g',
  stack: 'KafkaJSProtocolError: …\n    at parse (…)',
};

describe('kafkajs log lines', () => {
  it('are warnings of one line when kafkajs logs an error it goes on to retry', () => {
    const { lines, log } = bridge('info');
    log({ namespace: 'Consumer', level: KafkaLogLevel.ERROR, label: 'ERROR', log: { ...crash, timestamp: 'x', logger: 'kafkajs' } });
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, msg: crash.message, component: 'kafkajs', namespace: 'Consumer', groupId: 'g' }),
    ]);
    expect(lines[0]).not.toHaveProperty('stack');
  });

  it('keep the stack for debug', () => {
    const { lines, log } = bridge('debug');
    log({ namespace: 'Consumer', level: KafkaLogLevel.ERROR, label: 'ERROR', log: { ...crash, timestamp: 'x', logger: 'kafkajs' } });
    expect(lines.map((l) => l.level)).toEqual([40, 20]);
    expect(lines[1]).toMatchObject({ stack: crash.stack });
  });

  it('leave a failed broker response, which the retry layer decides on, to debug', () => {
    const { lines, log } = bridge('info');
    log({
      namespace: 'Connection',
      level: KafkaLogLevel.ERROR,
      label: 'ERROR',
      log: { message: 'Response Produce(key: 0, version: 7)', timestamp: 'x', logger: 'kafkajs' },
    });
    expect(lines).toEqual([]);
  });
});
