import type { ErrorCode } from './error-codes.js';

/**
 * One error hierarchy for all of wharf. Code reads `code` and `retriable`, never message text;
 * messages say what to do next.
 */
export interface WharfErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  /** Extra context (topic, workerId, field, …) carried for logs and programs. */
  context?: Record<string, unknown>;
}

export class WharfError extends Error {
  override readonly name: string = 'WharfError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, { cause, retriable = false, context = {} }: WharfErrorOptions = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.retriable = retriable;
    this.context = context;
  }
}

/** A command line that cannot be run as written: unknown flag, bad value. Exit code 2. */
export class UsageError extends WharfError {
  override readonly name = 'UsageError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_USAGE', message, options);
  }
}

/** Configuration that fails validation; `context.field` names the offending field. */
export class ConfigError extends WharfError {
  override readonly name = 'ConfigError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_CONFIG', message, options);
  }
}

/** Something the machine lacks (java, mvn, a free port, a reachable registry). */
export class PrerequisiteError extends WharfError {
  override readonly name = 'PrerequisiteError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_PREREQUISITE', message, options);
  }
}

/** No broker could be found or started. */
export class BrokerUnavailableError extends WharfError {
  override readonly name = 'BrokerUnavailableError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_BROKER_UNAVAILABLE', message, { retriable: true, ...options });
  }
}

/** A local broker process that exited or never answered while starting. */
export class BrokerStartError extends WharfError {
  override readonly name = 'BrokerStartError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_BROKER_START', message, options);
  }
}

/** A wait on a condition that passed its deadline. */
export class TimeoutError extends WharfError {
  override readonly name = 'TimeoutError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_TIMEOUT', message, { retriable: true, ...options });
  }
}

export function isWharfError(error: unknown): error is WharfError {
  return error instanceof WharfError;
}

/** The one line a command prints for an error: the message, and the cause where it adds something. */
export function describeError(error: unknown): string {
  if (error instanceof WharfError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

// ---- messaging (src/kafka, src/worker) --------------------------------------------------------

/**
 * A message that can never be handled as it is — a value that does not decode, fails the
 * service's schema or is over its size limit. Never retried: parked in `<topic>.dlq` at once,
 * with `code` as the reason (ERR_DECODE, ERR_SCHEMA, ERR_MESSAGE_TOO_LARGE).
 */
export class RejectedMessageError extends WharfError {
  override readonly name: string = 'RejectedMessageError';
  constructor(code: 'ERR_DECODE' | 'ERR_SCHEMA' | 'ERR_MESSAGE_TOO_LARGE', message: string, options?: WharfErrorOptions) {
    super(code, message, { ...options, retriable: false });
  }
}

/** A value that its codec cannot decode (not JSON, empty). */
export class DecodeError extends RejectedMessageError {
  override readonly name: string = 'DecodeError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_DECODE', message, options);
  }
}

/** A value that decodes but fails the service's (or a request's) schema; `context.issues` lists why. */
export class SchemaError extends RejectedMessageError {
  override readonly name: string = 'SchemaError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_SCHEMA', message, options);
  }
}

/** A value over the service's `maxMessageBytes`. */
export class MessageTooLargeError extends RejectedMessageError {
  override readonly name: string = 'MessageTooLargeError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_MESSAGE_TOO_LARGE', message, options);
  }
}

/** A value a codec cannot encode (undefined for JSON, a non-bytes value for raw). */
export class EncodeError extends WharfError {
  override readonly name: string = 'EncodeError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_ENCODE', message, { ...options, retriable: false });
  }
}

/** A Kafka operation that failed; `cause` is the client's error, `retriable` what it said. */
export class KafkaError extends WharfError {
  override readonly name: string = 'KafkaError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_KAFKA', message, options);
  }
}

/** A dead letter that is not there (wrong topic, partition or offset). */
export class DeadLetterNotFoundError extends WharfError {
  override readonly name: string = 'DeadLetterNotFoundError';
  constructor(message: string, options?: WharfErrorOptions) {
    super('ERR_DLQ_NOT_FOUND', message, options);
  }
}
