import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/paths.js';
import { computeProof, proofMatches } from '../../../src/admin/auth.js';
import {
  checkRequest,
  createFrameDecoder,
  DEFAULT_ADMIN_LIMITS,
  encodeFrame,
  METHOD_PARAMS,
  parseFrame,
  resolveLimits,
  type AdminLimits,
} from '../../../src/admin/protocol.js';

const frame = (value: unknown) => encodeFrame(value as object, 1 << 20);
const body = (text: string) => Buffer.from(text, 'utf8');

describe('frame codec', () => {
  it('splits a stream into frames whatever the chunking, down to single bytes', () => {
    const stream = Buffer.concat([frame({ a: 1 }), frame({ b: 'ü'.repeat(300) }), frame([1, 2, 3])]);
    for (const size of [1, 3, 4, 5, 17, stream.length]) {
      const decoder = createFrameDecoder(1024);
      const out: unknown[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...decoder.push(stream.subarray(i, i + size)).frames.map(parseFrame));
      expect(out, `chunks of ${size}`).toEqual([{ a: 1 }, { b: 'ü'.repeat(300) }, [1, 2, 3]]);
    }
  });

  it('refuses an oversized length as soon as its 4 bytes arrive, without waiting for the body', () => {
    const decoder = createFrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffff_ffff);
    expect(decoder.push(header.subarray(0, 2))).toEqual({ frames: [] });
    expect(decoder.push(header.subarray(2)).error).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
    expect(decoder.push(frame({ after: true })).error, 'nothing is read after framing broke').toMatchObject({
      code: 'ERR_FRAME_TOO_LARGE',
    });
    header.writeUInt32BE(1025);
    expect(createFrameDecoder(1024).push(header).error?.message).toBe('frame of 1025 bytes is over the 1024-byte limit');
    header.writeUInt32BE(0);
    expect(createFrameDecoder(1024).push(header).error).toMatchObject({ code: 'ERR_BAD_FRAME' });
  });

  it('still returns the frames that came before a framing error in the same chunk', () => {
    const { frames, error } = createFrameDecoder(1024).push(
      Buffer.concat([frame({ a: 1 }), frame({ b: 2 }), Buffer.from([0, 0, 0x10, 0])]),
    );
    expect(frames.map(parseFrame)).toEqual([{ a: 1 }, { b: 2 }]);
    expect(error).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
  });

  it('accepts a frame of exactly the limit', () => {
    const value = 'x'.repeat(1022); // a JSON string of 1024 bytes with its quotes
    expect(createFrameDecoder(1024).push(frame(value)).frames.map(parseFrame)).toEqual([value]);
  });

  it('refuses to encode a frame over the reply limit, and values JSON cannot carry', () => {
    expect(() => encodeFrame({ s: 'x'.repeat(100) }, 50)).toThrow(expect.objectContaining({ code: 'ERR_RESULT_TOO_LARGE' }));
    expect(() => encodeFrame({ n: 1n }, 50)).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL' }));
  });

  it('refuses to encode what parseFrame would refuse, and counts only brackets outside strings', () => {
    const nested = (levels: number): unknown => Array.from({ length: levels }).reduce<unknown>((inner) => [inner], 0);
    const withProto = Object.defineProperty({}, '__proto__', { value: 1, enumerable: true });
    for (const frame of [{ result: withProto }, { result: nested(64) }])
      expect(() => encodeFrame(frame, 1 << 20)).toThrow(expect.objectContaining({ code: 'ERR_RESULT_SHAPE' }));
    // 63 levels inside the frame object's own one: 64 in all, what parseFrame accepts.
    const deepest = encodeFrame({ result: nested(63) }, 1 << 20);
    expect(() => parseFrame(deepest.subarray(4))).not.toThrow();
    const text = { s: '['.repeat(100) + '"__proto__":\\"' + '{'.repeat(100), __proto_: 1 };
    expect(parseFrame(encodeFrame(text, 1 << 20).subarray(4))).toEqual(text);
  });

  it.each([
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8 JSON/],
    ['not JSON', body('{"a":'), /not UTF-8 JSON/],
    ['a top-level __proto__', body('{"__proto__":{"polluted":true}}'), /"__proto__" key is not allowed/],
    ['a nested __proto__', body('{"v":1,"params":{"value":[{"x":{"__proto__":{"polluted":1}}}]}}'), /"__proto__" key is not allowed/],
    ['an escaped __proto__', body('{"\\u005f_proto__":{"polluted":1}}'), /"__proto__" key is not allowed/],
    ['nesting past 64 levels', body('['.repeat(65) + ']'.repeat(65)), /nesting deeper than 64 levels is not allowed/],
    ['a very deep nesting', body('['.repeat(500_000) + ']'.repeat(500_000)), /nesting deeper than 64 levels is not allowed/],
  ])('refuses %s', (_, bytes, message) => {
    expect(() => parseFrame(bytes)).toThrow(message);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts constructor and prototype as ordinary keys, and 64 levels of nesting', () => {
    expect(parseFrame(body('{"constructor":1,"prototype":{"a":2}}'))).toEqual({ constructor: 1, prototype: { a: 2 } });
    expect(() => parseFrame(body('['.repeat(64) + ']'.repeat(64)))).not.toThrow();
  });
});

describe('request schema', () => {
  it.each([
    [[1, 2], 'ERR_BAD_FRAME', null, /a request is a JSON object/],
    [{ v: 1, method: 'ping' }, 'ERR_BAD_FRAME', null, /"id" must be a non-negative integer/],
    [{ v: 1, id: -1, method: 'ping' }, 'ERR_BAD_FRAME', null, /"id"/],
    [{ v: 1, id: 1.5, method: 'ping' }, 'ERR_BAD_FRAME', null, /"id"/],
    [{ v: 2, id: 7, method: 'ping' }, 'ERR_VERSION', 7, /unsupported protocol version 2: this server speaks 1/],
    [{ id: 7, method: 'ping' }, 'ERR_VERSION', 7, /unsupported protocol version undefined/],
    [{ v: '1', id: 7, method: 'ping' }, 'ERR_VERSION', 7, /version "1"/],
    [{ v: 1, id: 7, method: 'ping', extra: true }, 'ERR_BAD_FRAME', 7, /only the keys v, id, method, params/],
    [{ v: 1, id: 7, method: '' }, 'ERR_BAD_FRAME', 7, /"method" must be a string/],
    [{ v: 1, id: 7, method: 'x'.repeat(65) }, 'ERR_BAD_FRAME', 7, /"method" must be a string/],
    [{ v: 1, id: 7, method: ['ping'] }, 'ERR_BAD_FRAME', 7, /"method" must be a string/],
  ])('refuses %j with %s (id %s)', (value, code, id, message) => {
    let error: unknown;
    try {
      checkRequest(value);
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code, message: expect.stringMatching(message), context: { id } });
  });

  it('accepts a request with and without params', () => {
    expect(checkRequest({ v: 1, id: 0, method: 'ping' })).toEqual({ v: 1, id: 0, method: 'ping' });
    expect(checkRequest({ v: 1, id: 3, method: 'state.get', params: { name: 'a' } })).toEqual({
      v: 1,
      id: 3,
      method: 'state.get',
      params: { name: 'a' },
    });
  });
});

describe('method params', () => {
  it.each([
    ['ping', { x: 1 }, 'ping takes params {}, not "x"'],
    ['ping', [1], 'ping takes params {}'],
    ['state.get', { name: 5, extra: 1 }, 'state.get takes params {name}, not "extra"'],
    ['state.get', {}, 'state.get: "name" must be a string of 1 to 256 characters'],
    ['state.set', { name: 'a' }, 'state.set: "value" is required (any JSON value, null included)'],
    ['state.set', { name: 'a', value: 1, kind: 'Map' }, 'state.set: "kind" must be a lower-case word such as map, list, value or counter'],
    ['state.unwatch', { watch: 1.5 }, 'state.unwatch: "watch" must be the id of the state.watch request'],
    ['scale', { service: '', consumers: 65 }, 'scale: "service" must be a string of 1 to 256 characters'],
    [
      'state.call',
      { kind: 'queue', name: 'q', op: 'put', init: { capacity: 0 } },
      'state.call: "init" of a queue must be {"capacity": <a positive integer>}',
    ],
  ] as const)('%s %j is refused with one message naming the parameter', (method, params, message) => {
    expect(() => METHOD_PARAMS[method](params)).toThrow(expect.objectContaining({ code: 'ERR_BAD_PARAMS', message }));
  });

  it('gives the typed params of a good request', () => {
    expect(METHOD_PARAMS.ping(undefined)).toEqual({});
    expect(METHOD_PARAMS['state.watch']({ name: null })).toEqual({ name: undefined });
    expect(METHOD_PARAMS['state.set']({ name: 'a', value: null })).toEqual({ name: 'a', value: null });
    expect(METHOD_PARAMS['state.call']({ kind: 'semaphore', name: 's', op: 'acquire', init: { permits: 3 } })).toEqual({
      kind: 'semaphore',
      name: 's',
      op: 'acquire',
      args: [],
      init: { permits: 3 },
    });
    expect(METHOD_PARAMS['state.call']({ kind: 'map', name: 'm', op: 'get', args: ['k'], init: {} })).toMatchObject({
      args: ['k'],
      init: undefined,
    });
  });
});

describe('limits', () => {
  it.each(Object.keys(DEFAULT_ADMIN_LIMITS) as (keyof AdminLimits)[])('says what limits.%s must be', (key) => {
    const positive = key === 'authFailureDelayMs' ? 'a non-negative' : 'a positive';
    expect(() => resolveLimits({ [key]: -1 })).toThrow(`limits.${key} must be ${positive} integer; got -1.`);
    expect(() => resolveLimits({ [key]: 1.5 })).toThrow(`limits.${key} must be ${positive} integer; got 1.5.`);
  });

  it('fills in defaults and refuses a frame limit below the auth frame’s', () => {
    expect(resolveLimits({ maxConnections: 2 })).toEqual({ ...DEFAULT_ADMIN_LIMITS, maxConnections: 2 });
    expect(() => resolveLimits({ maxFrameBytes: 100 })).toThrow('limits.maxFrameBytes must be at least 1024; got 100.');
  });
});

describe('docs/protocol.md', () => {
  it('has a worked example whose proofs and lengths are right', () => {
    const doc = readFileSync(join(packageRoot(), 'docs', 'protocol.md'), 'utf8');
    const key = /^Key `([^`]+)`/m.exec(doc)?.[1];
    const lines = [...doc.matchAll(/^(S→C|C→S) ([0-9a-f]{8}) (\{.*\})$/gm)];
    expect(key).toBe('correct horse battery staple 42');
    expect(lines).toHaveLength(5);
    for (const [, , length, json] of lines) expect(Buffer.byteLength(json!), json).toBe(parseInt(length!, 16));
    const [challenge, auth, welcome] = lines.map((line) => JSON.parse(line[3]!));
    const serverNonce = Buffer.from(challenge.nonce, 'hex');
    const clientNonce = Buffer.from(auth.nonce, 'hex');
    expect(serverNonce).toEqual(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
    expect(proofMatches(computeProof(key!, 'client', serverNonce, clientNonce), auth.proof)).toBe(true);
    expect(proofMatches(computeProof(key!, 'server', serverNonce, clientNonce), welcome.proof)).toBe(true);
    expect(proofMatches(computeProof(key!, 'server', serverNonce, clientNonce), auth.proof)).toBe(false);
  });
});
