import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';

/** What every subcommand gets: its arguments and where to write. */
export interface CommandContext {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  /** Logs go to stderr, so that stdout carries only a command's result (or its --json object). */
  logger: Logger;
}

export interface Command {
  name: string;
  summary: string;
  run(context: CommandContext): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Strict flag parsing: an unknown flag, a missing value or a stray argument is a UsageError
 * that names it and the help to read, never silently ignored.
 */
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>>;

export function parseFlags<O extends Options>(argv: string[], options: O, command: string, { positionals = 0 } = {}): Parsed<O> {
  // `--rate -5` is a negative number, not a missing value: join it so the flag's own check answers.
  const end = argv.indexOf('--') === -1 ? argv.length : argv.indexOf('--');
  const takesValue = (arg: string | undefined) => arg !== undefined && /^--[^=]+$/.test(arg);
  const args = argv.map((arg, i) => (i < end && /^-\d/.test(arg) && takesValue(argv[i - 1]) ? `\0${arg}` : arg));
  const joined = args.reduce<string[]>(
    (out, arg) => (arg.startsWith('\0') ? [...out.slice(0, -1), `${out.at(-1)}=${arg.slice(1)}`] : [...out, arg]),
    [],
  );
  try {
    const parsed = parseArgs({ args: joined, options, strict: true, allowPositionals: positionals > 0 });
    if (parsed.positionals.length > positionals) {
      throw new UsageError(`Unexpected argument "${parsed.positionals[positionals]}" for \`${command}\`. Run \`${command} --help\`.`);
    }
    return parsed;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = error instanceof Error ? error.message.replace(/\. To specify a positional argument.*$/s, '') : String(error);
    throw new UsageError(`${message.replace(/\.$/, '')} for \`${command}\`. Run \`${command} --help\`.`, { cause: error });
  }
}

/** An integer flag within bounds, or a UsageError naming the flag and what it accepts. */
export function intFlag(
  value: string | undefined,
  flag: string,
  { min = 0, max = Number.MAX_SAFE_INTEGER, fallback }: { min?: number; max?: number; fallback: number },
): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || number < min || number > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}; got "${value}".`);
  }
  return number;
}

/** A flag that accepts one of a few words. */
export function choiceFlag<T extends string>(value: string | undefined, flag: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(', ')}; got "${value}".`);
  }
  return value as T;
}

export function writeJson(stream: Writable, value: unknown): void {
  stream.write(JSON.stringify(value) + '\n');
}
