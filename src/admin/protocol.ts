import { z } from 'zod';
import { WORKER_LIMITS } from '../config/schema.js';
import { ConfigError, WharfError } from '../errors.js';
import { isErrorCode, type ErrorCode } from '../error-codes.js';
import { STATE_KINDS, type StateKind } from '../state/types.js';

/**
 * The admin socket's wire format, shared by server and client: frames, codec, limits, codes.
 * docs/protocol.md is the prose version of this file; keep them in step.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Decoding is
 * JSON.parse and shape checks only: nothing on the wire can name code to run (Python's Manager
 * unpickles, which is why its authkey is all that stands between a socket and code execution).
 */
export const PROTOCOL_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];

/** Before authentication only the small auth frame is expected; anything bigger is refused early. */
export const MAX_AUTH_FRAME_BYTES = 1024;
/** The client's own cap on frames from a server (the server applies `maxReplyBytes` below it). */
export const CLIENT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** Nesting beyond this is refused: deep values cost stack in every later JSON.stringify. */
export const MAX_JSON_DEPTH = 64;

export const ErrorCodes = {
  auth: 'ERR_AUTH',
  authTimeout: 'ERR_AUTH_TIMEOUT',
  badFrame: 'ERR_BAD_FRAME',
  frameTooLarge: 'ERR_FRAME_TOO_LARGE',
  version: 'ERR_VERSION',
  unknownMethod: 'ERR_UNKNOWN_METHOD',
  badParams: 'ERR_BAD_PARAMS',
  unknownName: 'ERR_UNKNOWN_NAME',
  tooManyConnections: 'ERR_TOO_MANY_CONNECTIONS',
  tooManyWatches: 'ERR_TOO_MANY_WATCHES',
  idleTimeout: 'ERR_IDLE_TIMEOUT',
  busy: 'ERR_BUSY',
  resultTooLarge: 'ERR_RESULT_TOO_LARGE',
  resultShape: 'ERR_RESULT_SHAPE',
  shuttingDown: 'ERR_SHUTTING_DOWN',
  internal: 'ERR_INTERNAL',
  // Client side only: never sent on the wire.
  noSupervisor: 'ERR_NO_SUPERVISOR',
  noAuthkey: 'ERR_NO_AUTHKEY',
  closed: 'ERR_ADMIN_CLOSED',
  protocol: 'ERR_ADMIN_PROTOCOL',
  inUse: 'ERR_ADMIN_IN_USE',
} as const;

const count = (fallback: number, min = 1) => {
  const rule = `must be ${min === 0 ? 'a non-negative' : 'a positive'} integer`;
  return z.int({ error: rule }).min(min, { error: rule, abort: true }).default(fallback);
};

/** The admin socket's limits (`startAdminServer({ limits })`), each default declared here once. */
export const adminLimitsSchema = z.object({
  /** Largest request frame a client may send (body bytes). Bigger → ERR_FRAME_TOO_LARGE and close. */
  maxFrameBytes: z
    .int({ error: 'must be a positive integer' })
    .min(1, { error: 'must be a positive integer', abort: true })
    .min(MAX_AUTH_FRAME_BYTES, { error: `must be at least ${MAX_AUTH_FRAME_BYTES}` })
    .default(1024 * 1024),
  /** Largest frame the server sends; a bigger result becomes ERR_RESULT_TOO_LARGE. */
  maxReplyBytes: count(16 * 1024 * 1024),
  /** Open connections, authenticated or not; one more gets ERR_TOO_MANY_CONNECTIONS. */
  maxConnections: count(32),
  /** A connection with no request, no watch and nothing in flight for this long is closed. */
  idleTimeoutMs: count(5 * 60_000),
  /** Time from connect to a valid auth frame. */
  authTimeoutMs: count(5_000),
  /** Every failed authentication is answered after exactly this delay, whatever was wrong. */
  authFailureDelayMs: count(100, 0),
  maxWatchesPerConnection: count(32),
  /** Requests awaiting an asynchronous result per connection; more get ERR_BUSY (retriable). */
  maxInFlightPerConnection: count(64),
  /** Bytes queued for a client that does not read (a stalled watcher); past this it is dropped. */
  maxBufferedBytes: count(8 * 1024 * 1024),
});

/** The filled form. */
export type AdminLimits = z.output<typeof adminLimitsSchema>;
/** What `limits` may set: any of them. */
export type AdminLimitsInput = z.input<typeof adminLimitsSchema>;

export const DEFAULT_ADMIN_LIMITS: Readonly<AdminLimits> = adminLimitsSchema.parse({});

/** The filled form of `limits`, or a ConfigError naming every bad one. */
export function resolveLimits(limits: AdminLimitsInput = {}): AdminLimits {
  const result = adminLimitsSchema.safeParse(limits);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.join('.');
    if (!key) return `limits must be an object of limits by name; got ${JSON.stringify(limits)}`;
    return `limits.${key} ${issue.message}; got ${String((limits as Record<string, unknown>)[key])}`;
  });
  throw new ConfigError(`${problems.join('; ')}.`, { context: { field: `limits.${result.error.issues[0]!.path.join('.')}` } });
}

// ---- frames ----------------------------------------------------------------------------------

export interface ChallengeFrame {
  v: number;
  type: 'challenge';
  nonce: string;
  versions: number[];
  hmac: 'sha256';
  maxFrameBytes: number;
}
export interface AuthFrame {
  v: number;
  type: 'auth';
  nonce: string;
  proof: string;
}
export interface WelcomeFrame {
  v: number;
  type: 'welcome';
  proof: string;
  pid: number;
  methods: string[];
}
export interface RequestFrame {
  v: number;
  id: number;
  method: string;
  params?: unknown;
}
export interface WireError {
  code: string;
  message: string;
  retriable?: boolean;
}
export type ReplyFrame =
  { v: number; id: number | null; ok: true; result: unknown } | { v: number; id: number | null; ok: false; error: WireError };
export interface EventFrame {
  v: number;
  id: number;
  event: StateChange;
}

/** One change to a shared object, as `state.watch` streams it. */
export interface StateChange {
  name: string;
  kind: string;
  op: string;
  key?: unknown;
  value?: unknown;
  at: number;
}

export function errorFrame(id: number | null, error: WireError): ReplyFrame {
  return { v: PROTOCOL_VERSION, id, ok: false, error };
}

/** What a thrown value looks like on the wire: WharfError codes pass through, anything else is internal. */
export function toWireError(error: unknown): WireError {
  if (error instanceof WharfError && /^ERR_[A-Z0-9_]{1,60}$/.test(error.code)) {
    return { code: error.code, message: error.message.slice(0, 2000), ...(error.retriable ? { retriable: true } : {}) };
  }
  return { code: ErrorCodes.internal, message: `internal error: ${error instanceof Error ? error.message : String(error)}`.slice(0, 2000) };
}

/** An error frame as a WharfError; a code this client does not know (a newer server) is kept in the context. */
export function fromWireError(error: WireError, context: Record<string, unknown> = {}): WharfError {
  if (isErrorCode(error.code)) return new WharfError(error.code, error.message, { retriable: error.retriable === true, context });
  return new WharfError(ErrorCodes.protocol, `${error.code}: ${error.message}`, {
    retriable: error.retriable === true,
    context: { ...context, wireCode: error.code },
  });
}

// ---- codec -----------------------------------------------------------------------------------

/**
 * Length prefix + JSON, or the error to answer with instead: ERR_RESULT_TOO_LARGE, ERR_RESULT_SHAPE
 * (a frame parseFrame would refuse: what one side sends, the other must be able to read) or
 * ERR_INTERNAL (not JSON-encodable).
 */
export function encodeFrame(frame: object, maxBytes: number): Buffer {
  let json: string | undefined;
  try {
    json = JSON.stringify(frame);
  } catch (error) {
    throw new WharfError(ErrorCodes.internal, `internal error: the reply could not be encoded as JSON (${(error as Error).message})`);
  }
  const shape = unreadableShape(json);
  if (shape !== undefined) {
    throw new WharfError(
      ErrorCodes.resultShape,
      `the frame holds ${shape}, which the admin protocol does not carry (the other side would refuse it): read it in parts (one key, one object)`,
    );
  }
  const length = Buffer.byteLength(json);
  if (length > maxBytes) {
    throw new WharfError(
      ErrorCodes.resultTooLarge,
      `the result is ${length} bytes, over the ${maxBytes}-byte frame limit: ask for less (one object with state.get instead of state.snapshot)`,
    );
  }
  const buffer = Buffer.allocUnsafe(4 + length);
  buffer.writeUInt32BE(length, 0);
  buffer.write(json, 4, 'utf8');
  return buffer;
}

export interface FrameDecoder {
  /**
   * The frame bodies completed by `chunk`, and the error that broke framing, if one did: the
   * frames before it are still returned (and should be served), nothing after it can be read.
   */
  push(chunk: Buffer): { frames: Buffer[]; error?: WharfError };
  /** Raised after authentication; a length is checked the moment its 4 bytes arrive. */
  maxFrameBytes: number;
}

/**
 * Splits a byte stream into frame bodies. A declared length over the limit is an error as soon
 * as the prefix is read, so an oversized frame is never buffered whole; chunks of a large frame
 * are concatenated once, when it is complete.
 */
export function createFrameDecoder(maxFrameBytes: number): FrameDecoder {
  let chunks: Buffer[] = [];
  let buffered = 0;
  let expected = -1; // body length of the frame being read, once its prefix is in
  let broken: WharfError | undefined;
  const decoder: FrameDecoder = {
    maxFrameBytes,
    push(chunk) {
      if (broken) return { frames: [], error: broken };
      chunks.push(chunk);
      buffered += chunk.length;
      const frames: Buffer[] = [];
      for (;;) {
        if (expected < 0) {
          if (buffered < 4) break;
          if (chunks[0]!.length < 4) chunks = [Buffer.concat(chunks, buffered)];
          expected = chunks[0]!.readUInt32BE(0);
          if (expected === 0) broken = new WharfError(ErrorCodes.badFrame, 'bad frame: a length of 0 is not a frame');
          else if (expected > decoder.maxFrameBytes)
            broken = new WharfError(ErrorCodes.frameTooLarge, `frame of ${expected} bytes is over the ${decoder.maxFrameBytes}-byte limit`);
          if (broken) {
            chunks = [];
            return { frames, error: broken };
          }
        }
        if (buffered < 4 + expected) break;
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
        frames.push(all.subarray(4, 4 + expected));
        const rest = all.subarray(4 + expected);
        chunks = rest.length ? [rest] : [];
        buffered = rest.length;
        expected = -1;
      }
      return { frames };
    },
  };
  return decoder;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A frame body as a JSON value: strict UTF-8, JSON.parse with no reviver, then a walk that
 * refuses `__proto__` keys (harmless as JSON.parse's own properties, but a later Object.assign or
 * naive merge would turn them into a prototype change) and nesting deeper than MAX_JSON_DEPTH.
 */
export function parseFrame(body: Uint8Array): unknown {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(body));
  } catch (error) {
    throw new WharfError(ErrorCodes.badFrame, `bad frame: not UTF-8 JSON (${(error as Error).message.slice(0, 120)})`);
  }
  const problem = shapeProblem(value);
  if (problem !== undefined) throw new WharfError(ErrorCodes.badFrame, `bad frame: ${problem} is not allowed`);
  return value;
}

/** What parseFrame would refuse in a JSON value: a "__proto__" key or nesting deeper than MAX_JSON_DEPTH. */
function shapeProblem(root: unknown): string | undefined {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return `nesting deeper than ${MAX_JSON_DEPTH} levels`;
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__') return 'a "__proto__" key';
      stack.push([(value as Record<string, unknown>)[key], depth + 1]);
    }
  }
  return undefined;
}

/**
 * shapeProblem for JSON text about to be sent. One scan of the text finds the nesting depth and any
 * "__proto__" that may be a key; only then is the text parsed for the exact answer.
 */
function unreadableShape(json: string): string | undefined {
  if (!json.includes('"__proto__"') && nestingDepth(json) <= MAX_JSON_DEPTH) return undefined;
  return shapeProblem(JSON.parse(json));
}

/** The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count). */
function nestingDepth(json: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Keys outside `allowed` are refused, so a typo is an error rather than silently ignored. */
export function hasOnlyKeys(value: Record<string, unknown>, allowed: readonly string[]): boolean {
  return Object.keys(value).every((key) => allowed.includes(key));
}

const REQUEST_KEYS = ['v', 'id', 'method', 'params'] as const;

/** A parsed frame as a request, or a WharfError whose context carries the id when it was usable. */
export function checkRequest(frame: unknown): RequestFrame {
  if (!isPlainObject(frame))
    throw new WharfError(ErrorCodes.badFrame, 'bad frame: a request is a JSON object {v, id, method, params}', { context: { id: null } });
  const id = Number.isSafeInteger(frame.id) && (frame.id as number) >= 0 ? (frame.id as number) : null;
  const fail = (code: ErrorCode, message: string) => new WharfError(code, message, { context: { id } });
  if (id === null) throw fail(ErrorCodes.badFrame, 'bad frame: "id" must be a non-negative integer');
  if (frame.v !== PROTOCOL_VERSION)
    throw fail(
      ErrorCodes.version,
      `unsupported protocol version ${JSON.stringify(frame.v) ?? 'undefined'}: this server speaks ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  if (!hasOnlyKeys(frame, REQUEST_KEYS))
    throw fail(ErrorCodes.badFrame, `bad frame: a request has only the keys ${REQUEST_KEYS.join(', ')}`);
  if (typeof frame.method !== 'string' || frame.method.length === 0 || frame.method.length > 64) {
    throw fail(ErrorCodes.badFrame, 'bad frame: "method" must be a string of 1 to 64 characters');
  }
  return { v: frame.v, id, method: frame.method, ...('params' in frame ? { params: frame.params } : {}) };
}

// ---- methods ---------------------------------------------------------------------------------

const KIND_RULE = '"kind" must be a lower-case word such as map, list, value or counter';
const WATCH_RULE = '"watch" must be the id of the state.watch request';

/**
 * A method's params checked by its zod schema: the typed params, or ERR_BAD_PARAMS with one
 * message naming the method and the parameter (`state.get: "name" must be …`). A problem with
 * the params as a whole (not an object, an unknown key) comes first, then the first parameter's.
 */
export function checkParams<T>(schema: z.ZodType<T>, method: string, params: unknown): T {
  const result = schema.safeParse(params ?? {}, {
    error: (issue) => `"${issue.path?.join('.') ?? ''}": ${z.locales.en().localeError(issue)}`,
  });
  if (result.success) return result.data;
  const { issues } = result.error;
  const issue = issues.find((i) => i.path.length === 0) ?? issues[0]!;
  throw new WharfError(ErrorCodes.badParams, `${method}${issue.path.length === 0 ? ' ' : ': '}${issue.message}`, { context: { method } });
}

/** The params object of a method: strict, so a typo is refused rather than silently ignored. */
function params<S extends z.ZodRawShape>(shape: S) {
  const keys = `{${Object.keys(shape).join(', ')}}`;
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `takes params ${keys}, not ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
        : `takes params ${keys}`,
  });
}

const nameParam = (field = 'name') => {
  const rule = `"${field}" must be a string of 1 to 256 characters`;
  return z.string({ error: rule }).min(1, { error: rule }).max(256, { error: rule });
};

const stateKind = z.enum(STATE_KINDS, { error: (issue) => `"kind" must be one of ${STATE_KINDS.join(', ')}; got ${shown(issue.input)}` });

/** Creation settings a kind takes: a semaphore's permits, a queue's capacity. */
const INIT_FIELDS: Partial<Record<StateKind, 'permits' | 'capacity'>> = { semaphore: 'permits', queue: 'capacity' };

function initSchema(kind: StateKind) {
  const field = INIT_FIELDS[kind];
  const rule = `"init" of a ${kind} must be ${field ? `{"${field}": <a positive integer>}` : `absent: a ${kind} has no creation settings`}`;
  const count = z.int({ error: rule }).min(1, { error: rule }).optional();
  return z.strictObject(field ? { [field]: count } : {}, { error: rule }).nullish();
}

const consumers = (() => {
  const { min, max } = WORKER_LIMITS.consumer;
  const rule = `"consumers" must be a whole number from ${min} to ${max}`;
  return z.int({ error: rule }).min(min, { error: rule }).max(max, { error: rule });
})();

const stateCallParams = params({
  kind: stateKind,
  name: nameParam(),
  op: z.unknown().optional(),
  args: z.array(z.unknown(), { error: '"args" must be an array of the operation\'s arguments' }).optional(),
  init: z.unknown().optional(),
})
  .superRefine(({ kind, op, init }, ctx) => {
    const ops = STATE_CALL_OPS[kind];
    if (typeof op !== 'string' || !ops.includes(op))
      ctx.addIssue({ code: 'custom', path: ['op'], message: `a ${kind} has the operations ${ops.join(', ')}; got ${shown(op)}` });
    const checked = initSchema(kind).safeParse(init);
    if (!checked.success) ctx.addIssue({ code: 'custom', path: ['init'], message: checked.error.issues[0]!.message });
  })
  .transform(({ kind, name, op, args, init }) => {
    const settings = initSchema(kind).parse(init) as { permits?: number; capacity?: number } | null | undefined;
    return {
      kind,
      name,
      op: op as string,
      args: args ?? [],
      init: settings && Object.values(settings).some((v) => v !== undefined) ? settings : undefined,
    };
  });

/** Every built-in method's params schema: the wire's contract, which the server binds to the supervisor's AdminApi. */
const METHOD_SCHEMAS = {
  ping: params({}),
  'state.describe': params({}),
  'state.get': params({ name: nameParam() }),
  'state.set': params({
    name: nameParam(),
    value: z.custom<unknown>((value) => value !== undefined, { error: '"value" is required (any JSON value, null included)' }),
    kind: z
      .string({ error: KIND_RULE })
      .regex(/^[a-z][a-z0-9_-]{0,31}$/, { error: KIND_RULE })
      .optional(),
  }),
  'state.delete': params({ name: nameParam() }),
  'state.snapshot': params({}),
  // `partition`: between members of a deployment, a watch of one partition of its shared state (src/cluster/).
  'state.watch': params({ name: nameParam().nullish(), partition: z.int().min(0).max(999).nullish() }).transform(({ name, partition }) => ({
    name: name ?? undefined,
    partition: partition ?? undefined,
  })),
  'state.unwatch': params({ watch: z.int({ error: WATCH_RULE }).min(0, { error: WATCH_RULE }) }),
  'state.call': stateCallParams,
  status: params({}),
  scale: params({ service: nameParam('service'), consumers }),
} satisfies Record<string, z.ZodType>;

/** Each built-in method's params checked into a typed object (checkParams), or ERR_BAD_PARAMS. */
export const METHOD_PARAMS = Object.fromEntries(
  Object.entries(METHOD_SCHEMAS).map(([method, schema]) => [method, (p: unknown) => checkParams(schema as z.ZodType, method, p)]),
) as { readonly [M in keyof typeof METHOD_SCHEMAS]: (params: unknown) => z.output<(typeof METHOD_SCHEMAS)[M]> };

export type BuiltinMethod = keyof typeof METHOD_PARAMS;

/**
 * What `state.call` may run, per kind: the public operations of docs/state.md, and the `release`
 * and `extend` of a lease handle. Nothing else reaches the store from the socket (a counter's
 * `slot`, for one, is how workers find shared memory, and means nothing to another process).
 */
export const STATE_CALL_OPS: Readonly<Record<StateKind, readonly string[]>> = {
  map: ['get', 'set', 'setIfAbsent', 'compareAndSet', 'delete', 'has', 'keys', 'entries', 'size', 'clear', 'batch'],
  list: ['append', 'get', 'slice', 'length', 'clear'],
  value: ['get', 'set', 'compareAndSet'],
  counter: ['add', 'get', 'set'],
  lock: ['acquire', 'release', 'extend', 'info'],
  semaphore: ['acquire', 'release', 'extend', 'available'],
  event: ['set', 'clear', 'isSet', 'wait'],
  queue: ['put', 'get', 'size'],
  namespace: ['get', 'set', 'delete', 'assign', 'toObject'],
};

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : value === undefined ? 'nothing' : typeof value;
}

export function isHex(value: unknown, bytes: number): value is string {
  return typeof value === 'string' && value.length === bytes * 2 && /^[0-9a-f]+$/.test(value);
}
