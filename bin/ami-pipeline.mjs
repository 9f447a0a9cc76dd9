#!/usr/bin/env node
// The ami-pipeline command: TypeScript sources run through tsx, so there is no build step.
import { register } from 'tsx/esm/api';

register();
const { cli } = await import('../cli/main.ts');
process.exitCode = await cli(process.argv.slice(2));
