#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { describeError, UsageError, WharfError } from './errors.js';
import { createLogger } from './log.js';
import type { Command, CommandContext } from './cli/args.js';
import { adminCommand } from './cli/admin.js';
import { kafkaCommand } from './cli/kafka.js';
import { startCommand } from './cli/start.js';
import { exitWhenDone } from './cli/exit.js';

/** The `wharf` command: one dispatcher, one module per subcommand under src/cli/. */
const COMMANDS: readonly Command[] = [startCommand, adminCommand, kafkaCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: wharf <command> [flags]   (in this repository: npm start / npm run <command> -- [flags])',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `wharf <command> --help` for its flags. Environment: KAFKA_BROKERS, WHARF_LOG_LEVEL, WHARF_AUTHKEY.',
    'Load runs, benchmarks and fault runs are in this repository: npm run load|bench|chaos -- --help (scripts/load/).',
    '',
  ].join('\n');
}

export async function main(argv: string[], context: Partial<CommandContext> = {}): Promise<number> {
  const stdout = context.stdout ?? process.stdout;
  const stderr = context.stderr ?? process.stderr;
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    stdout.write(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command)
    return failed(
      new UsageError(`Unknown command "${name}". Commands: ${COMMANDS.map((c) => c.name).join(', ')}. Run \`wharf --help\`.`),
      stderr,
    );
  return runCommand(command, rest, context);
}

/**
 * Runs one command with the shared error handling: a WharfError is one line on stderr (exit 2 for
 * a usage error, else 1); anything else adds its stack. `npm run load|bench|chaos` enter here too.
 */
export async function runCommand(command: Command, argv: string[], context: Partial<CommandContext> = {}): Promise<number> {
  const stdout = context.stdout ?? process.stdout;
  const stderr = context.stderr ?? process.stderr;
  const env = context.env ?? process.env;
  try {
    const logger = context.logger ?? createLogger({ fd: 2 });
    return await command.run({ argv, env, stdout, stderr, logger });
  } catch (error) {
    return failed(error, stderr);
  }
}

function failed(error: unknown, stderr: CommandContext['stderr']): number {
  stderr.write(`wharf: ${describeError(error)}\n`);
  if (!(error instanceof WharfError) && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`);
  return error instanceof UsageError ? 2 : 1;
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) exitWhenDone(main(process.argv.slice(2)));
