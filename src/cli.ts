#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { describeError, UsageError, WharfError } from './errors.js';
import { createLogger } from './log.js';
import type { Command, CommandContext } from './cli/args.js';
import { adminCommand } from './cli/admin.js';
import { benchCommand } from './cli/bench.js';
import { chaosCommand } from './cli/chaos.js';
import { kafkaCommand } from './cli/kafka.js';
import { loadCommand } from './cli/load.js';
import { startCommand } from './cli/start.js';
import { exitWhenDone } from './cli/exit.js';

/** The `wharf` command: one dispatcher, one module per subcommand under src/cli/. */
const COMMANDS: readonly Command[] = [startCommand, adminCommand, kafkaCommand, loadCommand, benchCommand, chaosCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: wharf <command> [flags]   (in this repository: npm start / npm run <command> -- [flags])',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `wharf <command> --help` for its flags. Environment: KAFKA_BROKERS, WHARF_LOG_LEVEL, WHARF_AUTHKEY.',
    '',
  ].join('\n');
}

export async function main(argv: string[], context: Partial<CommandContext> = {}): Promise<number> {
  const stdout = context.stdout ?? process.stdout;
  const stderr = context.stderr ?? process.stderr;
  const env = context.env ?? process.env;
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      stdout.write(help());
      return name ? 0 : 2;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`Unknown command "${name}". Commands: ${COMMANDS.map((c) => c.name).join(', ')}. Run \`wharf --help\`.`);
    const logger = context.logger ?? createLogger({ fd: 2 });
    return await command.run({ argv: rest, env, stdout, stderr, logger });
  } catch (error) {
    stderr.write(`wharf: ${describeError(error)}\n`);
    if (!(error instanceof WharfError) && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
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
