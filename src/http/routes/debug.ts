/**
 * /debug/* read endpoints. Each handler serializes a snapshot of PodState; none does I/O.
 */
import { Hono } from 'hono';
import type { PodState } from '../../state/pod.js';
import { statusView } from '../../views/status.js';
import { memoryView } from '../../views/memory.js';
import { sendJson } from '../respond.js';
import type { AppEnv } from '../app.js';

export const DEBUG_ENDPOINTS = [
  { path: '/debug/status', methods: ['GET'], description: 'pod status: GPU, current job, ComfyUI, queue, problems' },
  { path: '/debug/memory', methods: ['GET'], description: 'GPU, ComfyUI, host and podscope memory; ring buffer fill; VRAM timeline' },
] as const;

export function debugRoutes(state: PodState): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/status', (c) => sendJson(c, state, statusView(state)));
  app.get('/memory', (c) => sendJson(c, state, memoryView(state)));
  return app;
}
