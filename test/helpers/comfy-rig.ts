/**
 * A simulated ComfyUI and a real podscope against it, on loopback.
 */
import WebSocket from 'ws';
import { SimComfyUI, type SimOptions } from '../../src/sim/comfyui.js';
import { startPodscope, type Podscope } from '../../src/main.js';
import { until } from './wait.js';

export interface Rig {
  sim: SimComfyUI;
  pod: Podscope;
  base: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get(path: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startRig(simOpts: SimOptions = {}, env: Record<string, string> = {}): Promise<Rig> {
  const sim = new SimComfyUI({ stepMs: 40, ...simOpts });
  await sim.start();
  const pod = await startPodscope({
    env: {
      PODSCOPE_PORT: '0',
      PODSCOPE_HOST: '127.0.0.1',
      COMFYUI_URL: sim.url,
      PODSCOPE_GPU: 'off',
      PODSCOPE_COMFYUI_POLL_MS: '500',
      PODSCOPE_WS_PING_MS: '1000',
      LOG_LEVEL: 'silent',
      ...env,
    },
    sinks: [],
  });
  const base = `http://127.0.0.1:${pod.port}`;
  return {
    sim,
    pod,
    base,
    get: jsonGetter(base),
    async close() {
      await pod.close();
      await sim.stop();
    },
  };
}

/** GETs a path of a server and parses the body when it is JSON; `at` is when the answer came. */
export function jsonGetter(base: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return async (path: string): Promise<{ status: number; body: any; at: number }> => {
    const res = await fetch(`${base}${path}`);
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text, at: Date.now() };
  };
}

export { until } from './wait.js';

/** A client like the platform's worker: its own socket under its own id, receiving its own prompt's events. */
export class SubmitterClient {
  readonly frames: Array<{ type: string; data: Record<string, unknown>; at: number }> = [];
  protected ws!: WebSocket;

  constructor(
    readonly url: string,
    readonly clientId: string,
  ) {}

  async connect(): Promise<this> {
    this.ws = new WebSocket(`${this.url.replace('http', 'ws')}/ws?clientId=${this.clientId}`);
    this.ws.on('message', (d, binary) => {
      if (binary) return;
      const m = JSON.parse(d.toString()) as { type: string; data: Record<string, unknown> };
      this.frames.push({ ...m, at: Date.now() });
    });
    this.ws.on('error', () => undefined); // a refused or dropped socket must not crash the test run
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    return this;
  }

  /** Resolves with the time the first frame matching arrives. */
  async waitFor(pred: (f: { type: string; data: Record<string, unknown> }) => boolean, ms = 10_000): Promise<number> {
    return until(async () => this.frames.find(pred)?.at, ms, 5);
  }

  close(): void {
    this.ws.close();
  }
}
