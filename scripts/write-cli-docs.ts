/** Writes the command reference of docs/cli.md from the CLI's own table (cli/usage.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { CLI_DOC, withCliReference } from './cli-reference';

writeFileSync(CLI_DOC, withCliReference(readFileSync(CLI_DOC, 'utf8')));
console.log(`wrote ${CLI_DOC.pathname}`);
