/**
 * Non-production endpoints (contract 2.9), mounted only with PODSCOPE_ENV=development.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { setLogLevel, type Logger } from '../../logger.js';
import type { PodReader } from '../../state/pod.js';
import { redactUrlCredentials, REDACTED } from '../../secrets.js';
import { ApiError } from '../errors.js';
import { readRequestCapped } from '../../shared/read-capped.js';
import { sendJson } from '../respond.js';
import type { AppEnv } from '../env.js';
import type { HttpServices } from '../services.js';

export const DEV_ENDPOINTS = [
  { path: '/debug/config', methods: ['GET'], description: 'development only: the effective configuration, secrets redacted' },
  { path: '/debug/connections', methods: ['GET'], description: 'development only: connections to ComfyUI and nvidia-smi children' },
  { path: '/debug/log-level', methods: ['POST'], description: 'development only: {"level":"debug"} changes the log level' },
] as const;

const MAX_BODY = 1024;

const LevelBody = z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) }).strict();

export function devRoutes(state: PodReader, logger: Logger, connections: HttpServices['connections']): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ strict: false });

  app.get('/config', (c) => {
    const cfg: Record<string, unknown> = { ...state.config };
    cfg.token = state.config.token === undefined ? null : REDACTED;
    cfg.comfyuiUrl = redactUrlCredentials(state.config.comfyuiUrl);
    cfg.instances = state.config.instances.map((i) => ({ ...i, url: redactUrlCredentials(i.url) }));
    return sendJson(c, state, { config: cfg, environment: state.environment, log_level: logger.level });
  });

  app.get('/connections', (c) => sendJson(c, state, connections()));

  app.post('/log-level', async (c) => {
    const raw = await readRequestCapped(c.req.raw, MAX_BODY);
    if (raw === null) throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `The body must be at most ${MAX_BODY} bytes.`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new ApiError(400, 'INVALID_PARAMETER', 'The body must be JSON like {"level":"debug"}.', { details: { parameter: 'body' } });
    }
    const r = LevelBody.safeParse(parsed);
    if (!r.success) {
      throw new ApiError(400, 'INVALID_PARAMETER', 'level must be one of trace, debug, info, warn, error, fatal, silent.', {
        details: { parameter: 'level', allowed: LevelBody.shape.level.options },
      });
    }
    const previous = logger.level;
    setLogLevel(logger, r.data.level);
    logger.warn({ data: { previous, level: r.data.level } }, 'log level changed at run time');
    return sendJson(c, state, { level: r.data.level, previous });
  });

  return app;
}
