#!/usr/bin/env node
import { configJsonSchema } from '../src/config/schema.js';

/** `node dist/scripts/config-schema.js > docs/wharf.config.schema.json`: the config file's JSON Schema, from src/config/schema.ts. */
process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
