/**
 * Builds podscope's HTTP app over a PodState with no collectors running, for in-process tests.
 */
import { loadConfig } from '../../src/config.js';
import { Scrubber } from '../../src/secrets.js';
import { createLogger, type LineSink } from '../../src/logger.js';
import { PodState, type PodStateOptions } from '../../src/state/pod.js';
import type { HttpServices } from '../../src/http/services.js';
import { createCoreMetrics } from '../../src/metrics/registry.js';
import { createHttpHandler, type HttpHandler } from '../../src/http/app.js';
import type { WebAssets } from '../../src/shared/web-assets.js';
import { checkAnswer } from './openapi.js';

export interface TestPod {
  app: HttpHandler['app'];
  /** node:http's listener: the direct lane, then Hono. */
  listener: HttpHandler['listener'];
  /** Ends every open stream, as podscope does when it stops. */
  endStreams: HttpHandler['endStreams'];
  state: PodState;
  lines: string[];
  metrics: ReturnType<typeof createCoreMetrics>;
}

export function memorySink(lines: string[]): LineSink {
  return { write: (line) => lines.push(line) };
}

/**
 * `opts.parts`: parts of the state to use instead of empty ones (a GPU state with samples, a
 * tracker with jobs); `opts.services`: what the HTTP layer is handed besides the state.
 */
export function testPod(env: Record<string, string | undefined> = {}, now?: () => number, opts: { assets?: WebAssets; parts?: PodStateOptions['parts']; services?: Partial<HttpServices> } = {}): TestPod {
  const fullEnv = { PODSCOPE_PORT: '0', RUNPOD_POD_ID: 'pod_test', ...env };
  const config = loadConfig(fullEnv);
  const scrubber = Scrubber.fromEnv(fullEnv, [config.token]);
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', podId: config.podId, environment: config.env, scrubber, sinks: [memorySink(lines)] });
  const state = new PodState({ config, version: '0.0.0-test', scrubber, env: fullEnv, now, parts: opts.parts });
  const metrics = createCoreMetrics({ version: '0.0.0-test', health: state.health });
  const { app, listener, endStreams } = createHttpHandler({ state, logger, metrics, assets: opts.assets, services: opts.services });
  // Every answer a test gets from the app is held to the OpenAPI document first.
  const request = app.request.bind(app);
  app.request = (async (input: string | URL | Request, init?: RequestInit, ...rest: unknown[]) => {
    const res = await (request as (...a: unknown[]) => Promise<Response>)(input, init, ...rest);
    const url = input instanceof Request ? input.url : String(input);
    await checkAnswer(init?.method ?? (input instanceof Request ? input.method : 'GET'), url, res);
    return res;
  }) as typeof app.request;
  return { app, listener, endStreams, state, lines, metrics };
}

/** Node bindings as @hono/node-server passes them, with a chosen peer address. */
export function fromAddress(remoteAddress: string) {
  return { incoming: { socket: { remoteAddress } } } as never;
}

export const LOOPBACK = fromAddress('127.0.0.1');
export const REMOTE = fromAddress('100.64.3.7');

/** A response body as JSON, loosely typed for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function json(res: Response): Promise<any> {
  return res.json();
}
