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
  readonly code: string;
  readonly retriable: boolean;
  readonly context: Record<string, unknown>;

  constructor(code: string, message: string, { cause, retriable = false, context = {} }: WharfErrorOptions = {}) {
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
