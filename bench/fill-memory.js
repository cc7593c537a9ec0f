#!/usr/bin/env node
/**
 * Fills every podscope buffer to its default capacity inside one podscope process and prints
 * its RSS as JSON: the memory goal is about this state, which takes hours to reach on a pod.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPodscope, tuneHeap } from '../dist/main.js';
import { bufferFill, fillBuffers } from './prefill.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podscope-fill-'));
// Not bench/lib.js's scratchDir: that module would load the simulator into the process measured.
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'fake.json'), JSON.stringify({ fixture: 'h200-x1.drv590.load', gpus: 8 }));
process.env.FAKE_NVIDIA_SMI = join(dir, 'fake.json');

tuneHeap();
// No ComfyUI in this process (it would count against podscope's memory): the buffers are filled
// directly, before the collectors start.
const env = { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_NVIDIA_SMI: join(ROOT, 'bin/fake-nvidia-smi'), PODSCOPE_GPU_BACKEND: 'nvidia-smi', LOG_LEVEL: 'silent', RUNPOD_GPU_COUNT: '8' };
let beforeFill = 0;
const pod = await startPodscope({
  env,
  sinks: [],
  beforeCollectors: (state, config) => {
    globalThis.gc?.();
    beforeFill = process.memoryUsage().rss;
    fillBuffers(state, config, { gpus: 8 });
  },
});
const { state } = pod;

globalThis.gc?.();
await new Promise((r) => setTimeout(r, 500));
globalThis.gc?.();
const afterFill = process.memoryUsage().rss;
// Filled in seconds, the buffers leave the garbage of hours behind, and V8 gives unused heap back
// to the system only once allocation has been quiet for 8 s (its memory reducer): a pod that
// filled them over hours is measured after that has run.
await new Promise((r) => setTimeout(r, 12_000));
const mem = process.memoryUsage();
process.stdout.write(
  JSON.stringify({
    rss_mb: Math.round(mem.rss / 1024 / 1024),
    rss_right_after_fill_mb: Math.round(afterFill / 1024 / 1024),
    rss_before_fill_mb: Math.round(beforeFill / 1024 / 1024),
    heap_used_mb: Math.round(mem.heapUsed / 1024 / 1024),
    heap_total_mb: Math.round(mem.heapTotal / 1024 / 1024),
    external_mb: Math.round(mem.external / 1024 / 1024),
    ...bufferFill(state.buffers()),
  }),
);
await pod.close();
process.exit(0);
