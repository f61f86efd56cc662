import type { KafkaMessage } from 'kafkajs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { DecodeError, EncodeError, MessageTooLargeError, RejectedMessageError, SchemaError, WharfError } from '../../src/errors.js';
import { jsonCodec, rawCodec, resolveCodec } from '../../src/kafka/codec.js';
import { createInboundDecoder } from '../../src/kafka/inbound.js';
import { isMessageSchema, validateMessage } from '../../src/kafka/message-schema.js';
import { isBrokerUnreachable } from '../../src/kafka/sender.js';
import { childTraceparent, newTraceparent, parseTraceparent } from '../../src/kafka/trace.js';
import { defineService } from '../../src/service.js';

const record = (value: Buffer | null) =>
  ({
    key: Buffer.from('k'),
    value,
    headers: { traceparent: Buffer.from('x') },
    offset: '7',
    timestamp: '0',
    attributes: 0,
    size: 0,
  }) as unknown as KafkaMessage;

describe('codecs', () => {
  it('JSON: round trip, and errors that say what is wrong', () => {
    expect(jsonCodec.decode(jsonCodec.encode({ a: [1, 'ü'] }))).toEqual({ a: [1, 'ü'] });
    expect(() => jsonCodec.encode(undefined)).toThrow(EncodeError);
    expect(() => jsonCodec.decode(Buffer.alloc(0))).toThrow(new DecodeError('empty value (expected JSON)'));
    const error = (() => {
      try {
        jsonCodec.decode(Buffer.from('{nope'));
      } catch (e) {
        return e as DecodeError;
      }
    })()!;
    expect(error).toBeInstanceOf(RejectedMessageError);
    expect(error).toMatchObject({ code: 'ERR_DECODE', retriable: false });
    expect(error.message).toMatch(/^value is not JSON: /);
  });

  it('raw: bytes in, bytes out; other values are refused', () => {
    const bytes = Buffer.from([0, 255, 7]);
    expect(rawCodec.decode(rawCodec.encode(bytes))).toEqual(bytes);
    expect(rawCodec.encode('hi')).toEqual(Buffer.from('hi'));
    expect(rawCodec.encode(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]));
    expect(() => rawCodec.encode({ a: 1 })).toThrow(/The raw codec sends a Buffer, Uint8Array or string; got object/);
    expect(resolveCodec('raw')).toBe(rawCodec);
    expect(resolveCodec(undefined)).toBe(jsonCodec);
  });
});

describe('traceparent', () => {
  it('parses valid headers and refuses invalid ones', () => {
    expect(parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      parentId: 'b7ad6b7169203331',
      flags: '01',
    });
    for (const bad of [
      undefined,
      '',
      'garbage',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
  });

  it('a child keeps the trace and gets a new parent id; without a parent, a new trace', () => {
    const parent = newTraceparent();
    const child = childTraceparent(parent);
    expect(parseTraceparent(child)!.traceId).toBe(parseTraceparent(parent)!.traceId);
    expect(parseTraceparent(child)!.parentId).not.toBe(parseTraceparent(parent)!.parentId);
    expect(parseTraceparent(childTraceparent('garbage'))).toBeDefined();
    expect(parseTraceparent(childTraceparent(undefined))!.traceId).not.toBe(parseTraceparent(parent)!.traceId);
  });

  it('draws ids that never repeat, across many refills of the random pool', () => {
    // 1,000 traces use 24 KB of randomness: the 4 KB pool is refilled six times on the way.
    const ids = Array.from({ length: 1_000 }, () => parseTraceparent(newTraceparent())!);
    expect(new Set(ids.map((t) => t.traceId)).size).toBe(1_000);
    expect(new Set(ids.map((t) => t.parentId)).size).toBe(1_000);
    expect(ids.every((t) => /^[0-9a-f]{32}$/.test(t.traceId) && /^[0-9a-f]{16}$/.test(t.parentId))).toBe(true);
  });
});

describe('schemas', () => {
  const schema = z.object({ n: z.number().int(), text: z.string() });

  it('returns the parsed value, or a SchemaError naming each field', async () => {
    expect(isMessageSchema(schema)).toBe(true);
    expect(isMessageSchema({ parse() {} })).toBe(false);
    await expect(validateMessage(schema, { n: 1, text: 'a' })).resolves.toEqual({ n: 1, text: 'a' });
    const error = (await validateMessage(schema, { n: 'x' }).catch((e: unknown) => e)) as SchemaError;
    expect(error).toBeInstanceOf(SchemaError);
    expect(error.code).toBe('ERR_SCHEMA');
    expect(error.message).toMatch(/^value fails the schema: n: .*; text: /);
    expect(error.context.issues).toHaveLength(2);
  });

  it("types the handler's message from the schema", () => {
    defineService({
      name: 'typed',
      consumes: { topics: ['t'] },
      schema,
      handler(message) {
        expectTypeOf(message.value).toEqualTypeOf<{ n: number; text: string }>();
      },
    });
  });
});

describe('the inbound decoder', () => {
  it('checks size first, then decodes, then validates; each failure is a rejection with its code', async () => {
    const decoder = createInboundDecoder({ codec: jsonCodec, schema: z.object({ n: z.number() }), maxMessageBytes: 10 });
    // Size and codec failures throw at once, schema failures reject: as a promise, all of them.
    const decode = async (...args: Parameters<typeof decoder>) => decoder(...args);
    await expect(decode('t', 2, record(Buffer.from('{"n":1}')))).resolves.toMatchObject({
      value: { n: 1 },
      key: 'k',
      topic: 't',
      partition: 2,
      offset: '7',
      headers: { traceparent: 'x' },
    });
    await expect(decode('t', 0, record(Buffer.from('{"n":"long value"}')))).rejects.toBeInstanceOf(MessageTooLargeError);
    await expect(decode('t', 0, record(Buffer.from('{"n":"long value"}')))).rejects.toThrow(
      'value of 18 bytes is over the 10-byte limit (consumes.maxMessageBytes)',
    );
    await expect(decode('t', 0, record(null))).rejects.toMatchObject({ code: 'ERR_DECODE' });
    await expect(decode('t', 0, record(Buffer.from('{"n":"1"}')))).rejects.toMatchObject({ code: 'ERR_SCHEMA' });
  });

  it('answers at once, without a promise, when there is no schema to validate', () => {
    const decode = createInboundDecoder({ codec: jsonCodec, maxMessageBytes: 100 });
    expect(decode('t', 1, record(Buffer.from('{"n":1}')))).toMatchObject({ value: { n: 1 }, partition: 1 });
    expect(() => decode('t', 1, record(Buffer.from('{')))).toThrow(expect.objectContaining({ code: 'ERR_DECODE' }));
  });
});

describe('isBrokerUnreachable', () => {
  it('finds a connection failure through the errors kafkajs wraps it in, and only that', () => {
    const connection = Object.assign(new Error('connect ECONNREFUSED'), { name: 'KafkaJSConnectionError' });
    const wrapped = Object.assign(new Error('Connection error'), { name: 'KafkaJSNonRetriableError', cause: connection });
    expect(isBrokerUnreachable(wrapped)).toBe(true);
    expect(isBrokerUnreachable(Object.assign(new Error('too large'), { name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE' }))).toBe(
      false,
    );
    expect(isBrokerUnreachable(new WharfError('ERR_KAFKA', 'x'))).toBe(false);
  });
});
