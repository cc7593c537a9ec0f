#!/usr/bin/env node
// podscope's entry point: the compiled CLI in dist/ (built by `npm ci` through the prepare script).
import { cli } from '../dist/cli/main.js';

const code = await cli(process.argv.slice(2), process.env);
process.exitCode = code;
// Let stdout drain; if anything still holds the event loop after that, leave anyway.
setTimeout(() => process.exit(code), 500).unref();
