#!/usr/bin/env node
import { runCommand } from '../src/cli.js';
import { exitWhenDone } from '../src/cli/exit.js';
import { loadCommand } from './load/cli/load.js';

/** `npm run load -- [flags]` = `node dist/scripts/load.js [flags]`: real traffic through a real service (scripts/load/). */
exitWhenDone(runCommand(loadCommand, process.argv.slice(2)));
