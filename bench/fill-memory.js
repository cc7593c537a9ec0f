#!/usr/bin/env node
/**
 * Fills every podscope buffer to its default capacity inside one podscope process and prints
 * its RSS as JSON: the memory goal is about this state, which takes hours to reach on a pod.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPodscope, tuneHeap } from '../dist/main.js';
import { txt2img } from '../dist/sim/comfyui.js';
import { answer } from '../dist/sim/fake-nvidia-smi.js';
import { planFields, parseHelpQueryGpu, parseCsvRows, toGpuRow } from '../dist/sources/nvidia-smi.js';
import { decodeHistoryEntry } from '../dist/sources/comfy-events.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podscope-fill-'));
writeFileSync(join(dir, 'fake.json'), JSON.stringify({ fixture: 'h200-x1.drv590.load', gpus: 8 }));
process.env.FAKE_NVIDIA_SMI = join(dir, 'fake.json');

tuneHeap();
// No ComfyUI in this process (it would count against podscope's memory): the buffers are filled directly.
const pod = await startPodscope({
  env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_NVIDIA_SMI: join(ROOT, 'bin/fake-nvidia-smi'), LOG_LEVEL: 'silent', RUNPOD_GPU_COUNT: '8' },
  sinks: [],
});
const { state, config } = pod;
await new Promise((r) => setTimeout(r, 1500));
globalThis.gc?.();
const baseline = process.memoryUsage().rss;

// GPU timeline: PODSCOPE_GPU_SAMPLES samples of 8 GPUs.
const help = answer(['--help-query-gpu'], { fixture: 'h200-x1.drv590.load' });
const plan = planFields(parseHelpQueryGpu(help.stdout));
const csv = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture: 'h200-x1.drv590.load', gpus: 8 }).stdout;
const t0 = Date.now() - config.gpuSamples * 1000;
for (let i = 0; i < config.gpuSamples; i++) state.gpu.applySample(t0 + i * 1000, parseCsvRows(csv, plan.fields.length).rows.map((r) => toGpuRow(r, plan.keys)));

// Jobs: PODSCOPE_JOB_HISTORY finished jobs, each a 7-node graph with outputs (artifacts come with them).
const tracker = state.comfy.tracker;
const perJob = Math.ceil(config.artifacts / config.jobHistory);
for (let j = 0; j < config.jobHistory + 10; j++) {
  const id = `00000000-0000-4000-8000-${String(j).padStart(12, '0')}`;
  const graph = txt2img({ seed: j, steps: 30 });
  const images = Array.from({ length: perJob }, (_, k) => ({ filename: `ComfyUI_${String(j * perJob + k).padStart(5, '0')}_.png`, subfolder: 'runs', type: 'output' }));
  tracker.applyHistory(Date.now(), decodeHistoryEntry(id, {
    prompt: [j, id, graph, { client_id: `worker-${id}`, job_id: `job_${j}` }, ['9']],
    outputs: { 9: { images } },
    status: { status_str: 'success', completed: true, messages: [['execution_start', { prompt_id: id, timestamp: Date.now() - 5000 }], ['execution_success', { prompt_id: id, timestamp: Date.now() }]] },
    meta: {},
  }));
}

// Logs: until both bounds of the buffer are reached.
const logs = state.logs;
let n = 0;
while (logs.ring.size < config.logLines || logs.ring.bytes < config.logBytes * 0.95) {
  const long = n % 3 === 0;
  logs.append({ ts: Date.now(), level: 'info', source: 'comfyui', message: long ? `Traceback (most recent call last):\n${'  File "/comfyui/execution.py", line 496, in execute\n'.repeat(12)}RuntimeError: x` : ` 50%|█████     | ${n}/100 [00:01<00:01,  1.95it/s] sampler step`, job_id: `job_${n % 200}` });
  n++;
  if (n > 5 * config.logLines) break;
}

globalThis.gc?.();
await new Promise((r) => setTimeout(r, 500));
globalThis.gc?.();
const afterFill = process.memoryUsage().rss;
// Filled in seconds, the buffers leave the garbage of hours behind, and V8 gives unused heap back
// to the system only once allocation has been quiet for 8 s (its memory reducer): a pod that
// filled them over hours is measured after that has run.
await new Promise((r) => setTimeout(r, 12_000));
const mem = process.memoryUsage();
const buffers = state.buffers();
process.stdout.write(
  JSON.stringify({
    rss_mb: Math.round(mem.rss / 1024 / 1024),
    rss_right_after_fill_mb: Math.round(afterFill / 1024 / 1024),
    rss_empty_buffers_mb: Math.round(baseline / 1024 / 1024),
    heap_used_mb: Math.round(mem.heapUsed / 1024 / 1024),
    heap_total_mb: Math.round(mem.heapTotal / 1024 / 1024),
    external_mb: Math.round(mem.external / 1024 / 1024),
    gpu_timeline: `${buffers.gpu_timeline.entries}/${buffers.gpu_timeline.capacity_entries}`,
    logs: `${buffers.logs.entries}/${buffers.logs.capacity_entries} lines, ${Math.round(buffers.logs.bytes / 1024 / 1024)}/${Math.round(buffers.logs.capacity_bytes / 1024 / 1024)} MiB`,
    jobs: `${buffers.jobs.entries}/${buffers.jobs.capacity_entries}`,
    artifacts: `${buffers.artifacts.entries}/${buffers.artifacts.capacity_entries}`,
  }),
);
await pod.close();
process.exit(0);
