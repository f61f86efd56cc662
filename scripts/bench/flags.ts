/**
 * Flags of a bench script run alone (`node dist/scripts/bench/<name>.js`): parsed as strictly as
 * the wharf command's (src/cli/args.ts); `--help` prints the script's usage; a wrong flag or value
 * ends the script with one line on stderr and exit code 2, never a stack trace.
 */
import { intFlag } from '../../src/cli/args.js';
import { UsageError } from '../../src/errors.js';

export { parseFlags } from '../../src/cli/args.js';

/** Every bench script's `--help`. */
export const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

/** Runs `read`; a UsageError it throws ends the process with its message (exit 2). */
export function orExit<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return usageExit(error.message);
  }
}

/** Ends the script with one line on stderr, exit code 2. */
export function usageExit(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/**
 * The script's flags as `parse` reads them (with `parseFlags`, including `help`), `--help`
 * answered here, or exit 2 with one line naming what is wrong.
 */
export function benchFlags<T extends { help?: boolean }>(usage: string, parse: (argv: string[]) => T): T {
  return orExit(() => {
    const values = parse(process.argv.slice(2));
    if (values.help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return values;
  });
}

/** A whole-number flag from `min` to `max`, with the command's help named when it is not. */
export function countFlag(command: string, value: string | undefined, flag: string, bounds: { min?: number; max?: number; fallback: number }): number {
  return orExit(() => {
    try {
      return intFlag(value, flag, bounds);
    } catch (error) {
      throw new UsageError(`${(error as Error).message} Run \`${command} --help\`.`);
    }
  });
}

/** A comma-separated list of whole numbers from `min` to `max`. */
export function countListFlag(command: string, value: string, flag: string, { min = 1, max = 1_000 }: { min?: number; max?: number } = {}): number[] {
  return value.split(',').map((item) => countFlag(command, item.trim(), flag, { min, max, fallback: 0 }));
}
