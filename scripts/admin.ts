#!/usr/bin/env node
import { main } from '../src/cli.js';

/** `node dist/scripts/admin.js <cmd>`: the same command as `wharf admin <cmd>` / `npm run admin -- <cmd>`. */
main(['admin', ...process.argv.slice(2)]).then((code) => process.exit(code));
