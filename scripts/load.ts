#!/usr/bin/env node
import { main } from '../src/cli.js';
import { exitWhenDone } from '../src/cli/exit.js';

/** `node dist/scripts/load.js [flags]`: the same command as `wharf load` / `npm run load -- [flags]`. */
exitWhenDone(main(['load', ...process.argv.slice(2)]));
