#!/usr/bin/env node
import { main } from '../src/cli.js';

/** `node dist/scripts/load.js [flags]`: the same command as `wharf load` / `npm run load -- [flags]`. */
main(['load', ...process.argv.slice(2)]).then((code) => process.exit(code));
