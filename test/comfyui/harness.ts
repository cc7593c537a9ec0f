/**
 * What the conformance suite needs around a real ComfyUI: podscope in-process pointed at it (with
 * a recorder of everything ComfyUI sends it), a submitter like the platform's worker (its own
 * websocket and clientId, prompts with `extra_data.job_id`), a watcher that polls podscope's answers
 * as a harness does, and the test workflows.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPodscope, type Podscope } from '../../src/main.js';
import type { RawInput } from '../../src/collectors/comfyui.js';
import { jsonGetter, SubmitterClient, until as untilCondition } from '../helpers/comfy-rig.js';
import { RealComfy } from './real-comfy.js';

/** What podscope is pointed at: the real ComfyUI or the simulator. */
export interface ComfyTarget {
  url: string;
  logFile: string;
  outputDir: string;
}

export type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

export interface Pod {
  pod: Podscope;
  base: string;
  raw: RawInput[];
  /** Every ComfyUI log record as each origin (websocket, file) delivered it, with when. */
  logRecords: Array<{ origin: 'stream' | 'file'; text: string; at: number }>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get(path: string): Promise<{ status: number; body: any; at: number }>;
  close(): Promise<void>;
}

export async function startPod(comfy: ComfyTarget, env: Record<string, string> = {}): Promise<Pod> {
  const raw: RawInput[] = [];
  const logRecords: Pod['logRecords'] = [];
  const pod = await startPodscope({
    env: {
      PODSCOPE_PORT: '0',
      PODSCOPE_HOST: '127.0.0.1',
      COMFYUI_URL: comfy.url,
      COMFYUI_LOG_FILE: comfy.logFile,
      COMFYUI_OUTPUT_DIR: comfy.outputDir,
      PODSCOPE_GPU: 'off',
      LOG_LEVEL: 'silent',
      ...env,
    },
    sinks: [],
    recordComfy: (r) => {
      if (raw.length < 200_000) raw.push(r);
    },
    recordLogs: (origin, text) => {
      if (logRecords.length < 200_000) logRecords.push({ origin, text, at: Date.now() });
    },
  });
  const base = `http://127.0.0.1:${pod.port}`;
  return { pod, base, raw, logRecords, get: jsonGetter(base), close: () => pod.close() };
}

export interface RealRig {
  comfy: RealComfy;
  pod: Pod;
  worker: Submitter;
  close(): Promise<void>;
}

/**
 * A real ComfyUI (with the tap node or without), podscope on it with `env`, and a submitter like
 * the platform's worker; resolves once podscope says whether the tap is there.
 */
export async function startRealRig(mode: 'tap' | 'observer', env: Record<string, string> = {}): Promise<RealRig> {
  const comfy = new RealComfy({ tap: mode === 'tap' });
  await comfy.start();
  const pod = await startPod(comfy, env);
  const worker = await new Submitter(comfy.url).connect();
  await until(async () => (await pod.get('/debug/status')).body.comfyui.tap === (mode === 'tap') || null, 30_000);
  return {
    comfy,
    pod,
    worker,
    async close() {
      worker.close();
      await pod.close();
      await comfy.stop();
    },
  };
}

/** Keeps the raw inputs of one scenario as JSONL under test-results/recordings/ (for fixtures and debugging). */
export function saveRecording(name: string, raw: RawInput[], from: number): string {
  const dir = join(process.cwd(), 'test-results', 'recordings');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.jsonl`);
  writeFileSync(path, raw.filter((r) => r.t >= from).map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

/** Waits on a condition with the suite's generous defaults (30 s deadline, 25 ms polls). */
export function until<T>(probe: () => Promise<T | undefined | false | null> | T | undefined | false | null, ms = 30_000, every = 25): Promise<T> {
  return untilCondition(probe, ms, every);
}

export interface Frame {
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/** A client like RunPod's worker: a fresh clientId and its own socket, receiving its own prompts' events. */
export class Submitter extends SubmitterClient {
  constructor(url: string) {
    super(url, `harness-${randomUUID()}`);
  }

  /** POSTs a prompt; `client: false` sends no client_id (a script's prompt); `extra` goes into extra_data beside the job id. */
  async submit(graph: Graph, jobId: string, opts: { client?: boolean; extra?: Record<string, unknown> } = {}): Promise<{ status: number; promptId: string | null; postedAt: number; body: Record<string, unknown> }> {
    const payload: Record<string, unknown> = { prompt: graph, extra_data: { ...opts.extra, job_id: jobId } };
    if (opts.client !== false) payload.client_id = this.clientId;
    const postedAt = Date.now();
    const res = await fetch(`${this.url}/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, promptId: typeof body.prompt_id === 'string' ? body.prompt_id : null, postedAt, body };
  }

  /** When this client received the prompt's terminal event (execution_success/error/interrupted). */
  terminal(promptId: string, ms = 60_000): Promise<Frame> {
    return until(() => this.frames.find((f) => /^execution_(success|error|interrupted)$/.test(f.type) && f.data.prompt_id === promptId), ms, 5);
  }

  override close(): void {
    this.ws?.terminate();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Sample = { at: number; status: number; body: any };

/** Polls podscope as a harness does, every `every` ms, until stopped. */
export class Watcher {
  readonly samples: Sample[] = [];
  private running = true;
  private loop: Promise<void>;

  constructor(
    pod: Pod,
    readonly path: string,
    every = 25,
  ) {
    this.loop = (async () => {
      while (this.running) {
        const r = await pod.get(path).catch(() => null);
        if (r) this.samples.push(r);
        await new Promise((res) => setTimeout(res, every));
      }
    })();
  }

  async stop(): Promise<Sample[]> {
    this.running = false;
    await this.loop;
    return this.samples;
  }
}

let counter = 0;
/** A colour nobody used yet, so EmptyImage (and all after it) is never a cache hit. */
export function fresh(): number {
  counter++;
  return (Date.now() * 7 + counter * 7919) % 0xffffff;
}

export const image = (color = fresh()) => ({ class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color } });

/** EmptyImage → slow loader → sampler (tqdm + ProgressBar) → SaveImage. */
export function samplerGraph(o: { steps?: number; stepMs?: number; loadMs?: number; output?: 'SaveImage' | 'PreviewImage'; color?: number } = {}): Graph {
  const out = o.output ?? 'SaveImage';
  return {
    '1': image(o.color),
    '2': { class_type: 'PodscopeSlowLoad', inputs: { image: ['1', 0], ms: o.loadMs ?? 400, seed: 0 } },
    '3': { class_type: 'PodscopeTqdmSampler', inputs: { image: ['2', 0], steps: o.steps ?? 10, step_ms: o.stepMs ?? 100, seed: 0 } },
    '4': { class_type: out, inputs: out === 'SaveImage' ? { images: ['3', 0], filename_prefix: 'conformance' } : { images: ['3', 0] } },
  };
}

/** A prompt that takes about 20 ms: EmptyImage → SaveImage. */
export function quickGraph(): Graph {
  return { '1': image(), '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'quick' } } };
}

/** A prompt whose middle node raises. */
export function failingGraph(message = 'podscope test node failed on purpose'): Graph {
  return {
    '1': image(),
    '2': { class_type: 'PodscopeRaise', inputs: { image: ['1', 0], message } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'never' } },
  };
}

/** A prompt ComfyUI refuses at validation: steps below the sampler's minimum. */
export function invalidGraph(): Graph {
  const g = samplerGraph();
  g['3']!.inputs.steps = 0;
  return g;
}

/** A prompt whose sampler logs a marker line (to find it in podscope's log buffer). */
export function markerGraph(marker: string): Graph {
  return {
    '1': image(),
    '2': { class_type: 'PodscopeMarker', inputs: { image: ['1', 0], marker } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'marker' } },
  };
}
