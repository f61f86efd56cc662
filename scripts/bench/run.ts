#!/usr/bin/env node
import { runCommand } from '../../src/cli.js';
import { exitWhenDone } from '../../src/cli/exit.js';
import { benchCommand } from '../load/cli/bench.js';

/** `npm run bench -- [flags]` = `node dist/scripts/bench/run.js [flags]`: every benchmark section, ratios against baselines (scripts/load/bench.ts). */
exitWhenDone(runCommand(benchCommand, process.argv.slice(2)));
