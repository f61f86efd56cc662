#!/usr/bin/env node
import { main } from '../../src/cli.js';

/** `node dist/scripts/bench/run.js [flags]`: the same command as `wharf bench` / `npm run bench -- [flags]`. */
main(['bench', ...process.argv.slice(2)]).then((code) => process.exit(code));
