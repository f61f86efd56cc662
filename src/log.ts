import { pino, destination as pinoDestination, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { logLevel as KafkaLogLevel, type logCreator } from 'kafkajs';

export type { Logger } from 'pino';

/** Fields a child logger may bind; typed so every component names things the same way. */
export interface LogBindings {
  component?: string;
  service?: string;
  role?: string;
  workerId?: string | number;
  topic?: string;
  partition?: number;
}

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** 1 = stdout (the supervisor), 2 = stderr (commands whose stdout is their result). */
  fd?: 1 | 2;
  /** Human-readable lines; defaults to whether the destination is a terminal. */
  pretty?: boolean;
  /** Write somewhere else entirely (tests capture logs this way). */
  destination?: DestinationStream;
}

const LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function levelFromEnv(env: NodeJS.ProcessEnv = process.env, fallback: LevelWithSilent = 'info'): LevelWithSilent {
  const value = env.WHARF_LOG_LEVEL?.trim().toLowerCase();
  if (!value) return fallback;
  if ((LEVELS as readonly string[]).includes(value)) return value as LevelWithSilent;
  process.emitWarning(`WHARF_LOG_LEVEL=${value} is not a level; use one of ${LEVELS.join(', ')}. Using ${fallback}.`);
  return fallback;
}

/** The one pino root of a process; components take `root.child({ component: … })`. */
export function createLogger({ level = levelFromEnv(), fd = 1, pretty, destination }: LoggerOptions = {}): Logger {
  const base = { level, base: { pid: process.pid } };
  if (destination) return pino(base, destination);
  const isTty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  if (pretty ?? isTty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: fd, ignore: 'pid,hostname' } } });
  }
  // Synchronous writes: a supervisor logs events, not a firehose, and nothing is lost at exit.
  return pino(base, pinoDestination({ fd, sync: true }));
}

export function childLogger(parent: Logger, bindings: LogBindings): Logger {
  return parent.child(bindings);
}

/**
 * What kafkajs reports as a problem though it is the normal course of things: a transaction begun
 * while the broker still writes the previous one's markers (retried at once: every write of a
 * deployment's state meets it), and the warning about the bounded retries of the changelog's
 * transactional producer, which wharf bounds on purpose (a fenced owner must fail, not retry).
 */
const ROUTINE = [/another concurrent operation on the same transaction/, /Limiting retries for the idempotent producer/];

/**
 * Routes kafkajs's logs into a pino logger. Error level means someone should act, and kafkajs
 * logs at ERROR what it is about to retry: every failed broker response from its Connection
 * (demoted to debug), a consumer that crashed and restarts itself, a send it retries ("The
 * coordinator is loading…" during a restore, a broker that died). Whatever is final reaches
 * wharf as a thrown error or a crash event, which wharf logs at the level it deserves; so
 * kafkajs's own errors become one-line warnings, their stacks kept for debug.
 */
export function kafkaLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _ts, logger: _name, stack, ...extra } = log as Record<string, unknown> & { message: string };
      const fields = { component: 'kafkajs', namespace, ...extra };
      if (ROUTINE.some((pattern) => pattern.test(message))) logger.debug(fields, message);
      else if (level === KafkaLogLevel.ERROR && namespace !== 'Connection') {
        logger.warn(fields, message);
        if (stack) logger.debug({ ...fields, stack }, message);
      } else if (level === KafkaLogLevel.WARN) logger.warn(fields, message);
      else if (level === KafkaLogLevel.INFO) logger.info(fields, message);
      else logger.debug(stack ? { ...fields, stack } : fields, message);
    };
}

/**
 * The kafkajs level for a pino level. kafkajs's INFO is a line per consumer start, stop and
 * group join per worker, so at wharf's default `info` it is let through only from `debug` on.
 */
export function kafkaLogLevel(logger: Logger): KafkaLogLevel {
  switch (logger.level) {
    case 'trace':
    case 'debug':
      return KafkaLogLevel.DEBUG;
    case 'info':
    case 'warn':
      return KafkaLogLevel.WARN;
    case 'silent':
      return KafkaLogLevel.NOTHING;
    default:
      return KafkaLogLevel.ERROR;
  }
}
