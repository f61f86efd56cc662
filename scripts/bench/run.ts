#!/usr/bin/env node
import { main } from '../../src/cli.js';
import { exitWhenDone } from '../../src/cli/exit.js';

/** `node dist/scripts/bench/run.js [flags]`: the same command as `wharf bench` / `npm run bench -- [flags]`. */
exitWhenDone(main(['bench', ...process.argv.slice(2)]));
