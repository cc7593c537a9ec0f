/**
 * Golden files: what a person and Prometheus read, fed by recorded real data (the real ComfyUI's
 * recordings, real nvidia-smi outputs) on a fixed clock, compared with test/golden/. A change to
 * any of them shows as a diff to review; `UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts`
 * rewrites them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gpuUse } from '../helpers/gpu-use.js';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Exposition } from '../../src/metrics/registry.js';
import { describe, expect, it } from 'vitest';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { loadConfig } from '../../src/config.js';
import { registerComfyMetrics } from '../../src/metrics/comfyui.js';
import { registerGpuMetrics } from '../../src/metrics/gpu.js';
import { Scrubber } from '../../src/secrets.js';
import { renderLogLine, renderQueue, renderStatus, renderWorkflow } from '../../src/shared/text-views.js';
import { fixtureHealth, fixtureRows } from '../helpers/gpu-rows.js';
import { ComfyState } from '../../src/state/comfy.js';
import { GpuState } from '../../src/state/gpu.js';
import { PodState } from '../../src/state/pod.js';
import { attributionStep, FinishPipeline } from '../../src/finish/pipeline.js';
import { queueView, workflowView } from '../../src/views/jobs.js';
import { statusView } from '../../src/views/status.js';

const GOLDEN = fileURLToPath(new URL('../golden/', import.meta.url));
const RECORDINGS = fileURLToPath(new URL('../fixtures/comfyui/recordings/', import.meta.url));

/**
 * Compares with test/golden/<name>. The file is written only with UPDATE_GOLDEN=1: a missing one
 * fails, so a deleted golden can never pass by being written from the answer it should check.
 */
function golden(name: string, actual: string): void {
  const path = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(path, actual);
  }
  if (!existsSync(path)) expect.fail(`${relative(process.cwd(), path)} is missing: write it with UPDATE_GOLDEN=1 and review it before committing`);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

function recording(name: string): RawInput[] {
  return readFileSync(join(RECORDINGS, `${name}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}


const T0 = Date.parse('2026-11-23T12:00:00.000Z');

/** A pod on a fixed clock: two H200 samples 1 s apart, then the real ComfyUI's jobs replayed. */
function pod(recordings: string[]) {
  let now = T0;
  const clock = () => now;
  const config = loadConfig({ RUNPOD_POD_ID: 'pod_golden', COMFYUI_URL: 'http://127.0.0.1:8188' }, 'golden');
  const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 100 });
  const comfy = new ComfyState(config.comfyuiUrl, { jobIdKey: 'job_id', historyLimit: 50 });
  const state = new PodState({ config, version: '0.0.0-golden', scrubber: new Scrubber([]), env: {}, now: clock, parts: { gpu, comfy } });
  const registry = new Exposition();
  registerGpuMetrics(registry, gpu, clock);
  const jobMetrics = registerComfyMetrics(registry, state.instances);
  comfy.tracker.finishWith(new FinishPipeline([attributionStep(comfy, gpuUse(gpu, comfy)), { name: 'count it', run: jobMetrics.jobFinished }], (step, _job, err) => expect.fail(`${step}: ${String(err)}`)).run);
  const rows = fixtureRows('h200-x1.drv590.load');
  gpu.applySample(T0, rows);
  gpu.applySample(T0 + 1000, rows);
  gpu.setHealth(T0 + 1000, fixtureHealth('h200-x1.drv590.load'));
  for (const name of recordings) replay(comfy.tracker, recording(name));
  now = T0 + 2000;
  comfy.httpAnswered(T0);
  comfy.connected('podscope-golden');
  comfy.systemStatsRead(T0, { system: { comfyui_version: '0.3.64' }, devices: [] });
  return { state, comfy, registry, at: () => now };
}

describe('text views, as curl and the CLI show them', () => {
  for (const [name, prefix] of [
    ['tap-success', 'job-found-'],
    ['observer-success', 'job-found-'],
    ['tap-error', 'job-error-'],
    ['tap-interrupt', 'job-interrupt-'],
  ] as const) {
    it(`workflow of ${name}`, () => {
      const { comfy, state, at } = pod([name]);
      const job = comfy.tracker.all().find((j) => j.job_id.startsWith(prefix))!;
      golden(`workflow-${name}.txt`, renderWorkflow(workflowView(comfy, state.gpuUse, job, at())));
    });
  }

  it('status of a pod with one H200 and finished jobs', () => {
    const { state } = pod(['tap-success']);
    golden('status-h200.txt', renderStatus(statusView(state)));
  });

  it('queue with a rejected prompt', () => {
    const { comfy, at } = pod(['tap-success']);
    comfy.addRejection({ at: T0, job_id: 'job-rejected-1', prompt_id: 'p-rej', reasons: ['PodscopeTqdmSampler 3: Value 0 smaller than min of 1: steps'], lines: [], source: 'tap' });
    golden('queue-rejected.txt', renderQueue(queueView([comfy], at())));
  });

  it('log lines', () => {
    const lines = [
      { ts: '2026-11-23T12:00:00.000Z', level: 'info', source: 'comfyui', job_id: 'job-1', message: 'got prompt' },
      { ts: '2026-11-23T12:00:01.500Z', level: 'error', source: 'comfyui', job_id: 'job-1', message: '!!! Exception during processing !!! podscope test node failed on purpose' },
      { ts: '2026-11-23T12:00:02.000Z', level: 'warn', source: 'podscope', job_id: null, message: 'job job-1 finished: error' },
    ];
    golden('log-lines.txt', lines.map(renderLogLine).join('\n') + '\n');
  });
});

describe('the /metrics exposition', () => {
  it("podscope's GPU and job families for one H200 and the real ComfyUI's jobs", async () => {
    const { registry } = pod(['tap-success', 'tap-error', 'tap-interrupt', 'observer-success']);
    const text = await registry.metrics();
    golden('metrics-gpu-jobs.prom', text);
  });
});
