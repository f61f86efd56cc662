#!/usr/bin/env node
import { runCommand } from '../src/cli.js';
import { exitWhenDone } from '../src/cli/exit.js';
import { chaosCommand } from './load/cli/chaos.js';

/** `npm run chaos -- [flags]` = `node dist/scripts/chaos.js [flags]`: a load run while brokers and workers are killed (scripts/load/chaos.ts). */
exitWhenDone(runCommand(chaosCommand, process.argv.slice(2)));
