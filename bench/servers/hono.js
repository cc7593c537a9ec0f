#!/usr/bin/env node
/** Baseline: Hono on @hono/node-server, one route answering with the body in BODY_FILE. Prints its port on stderr. */
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';

const body = readFileSync(process.env.BODY_FILE, 'utf8');
const app = new Hono();
app.get('*', (c) => c.body(body, 200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }));
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => process.stderr.write(`port ${info.port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
