#!/usr/bin/env node
import { main } from '../src/cli.js';
import { exitWhenDone } from '../src/cli/exit.js';

/** `node dist/scripts/admin.js <cmd>`: the same command as `wharf admin <cmd>` / `npm run admin -- <cmd>`. */
exitWhenDone(main(['admin', ...process.argv.slice(2)]));
