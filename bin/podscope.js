#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4
// A 4 MiB young generation, and glibc's malloc kept to two arenas instead of one per thread that
// ever allocates (GC helpers, libuv's pool), keep the resident set small under load (README,
// Performance).
// podscope's entry point: the compiled CLI in dist/ (built by `npm ci` through the prepare script).
import { cli } from '../dist/cli/main.js';

// The server and the demo are loaded only by the commands that run them.
const runners = {
  serve: async (env) => (await import('../dist/main.js')).runServe(env),
  demo: async (env, opts) => (await import('../dist/demo.js')).runDemo(env, opts),
};
const code = await cli(process.argv.slice(2), process.env, runners);
process.exitCode = code;
// Let stdout drain; if anything still holds the event loop after that, leave anyway.
setTimeout(() => process.exit(code), 500).unref();
