#!/usr/bin/env node
import { errorCodesMarkdown } from '../src/error-codes.js';

/** `node dist/scripts/error-docs.js > docs/errors.md`: the error-code table, from src/error-codes.ts. */
process.stdout.write(errorCodesMarkdown());
