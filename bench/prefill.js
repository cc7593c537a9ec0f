/**
 * Fills every podscope buffer to its configured capacity, as an hour or more of work would leave
 * it: the GPU timeline, the finished jobs with their outputs (and so the artifacts and events),
 * and the log buffer to both of its bounds. Everything is dated in the past, ending now, so that
 * it runs before the collectors start (`startPodscope({ beforeCollectors })`) and what they add
 * afterwards follows in order.
 */
import { txt2img } from '../dist/sim/comfyui.js';
import { answer } from '../dist/sim/fake-nvidia-smi.js';
import { planFields, parseHelpQueryGpu, parseCsvRows, toGpuRow } from '../dist/sources/nvidia-smi.js';
import { decodeHistoryEntry } from '../dist/sources/comfy-events.js';
import { gpuEventData } from '../dist/collectors/events.js';

const FIXTURE = 'h200-x1.drv590.load';

/** The prompt id of the j-th filled job. */
const promptId = (j) => `00000000-0000-4000-8000-${String(j).padStart(12, '0')}`;

/** `state` and `config` as `beforeCollectors` receives them; `gpus` simulated H200s. */
export function fillBuffers(state, config, { gpus = 8, now = Date.now() } = {}) {
  // GPU timeline: one sample per second of the hour before now, as the live collector takes them.
  if (state.gpu) {
    const plan = planFields(parseHelpQueryGpu(answer(['--help-query-gpu'], { fixture: FIXTURE }).stdout));
    const csv = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture: FIXTURE, gpus }).stdout;
    const rows = parseCsvRows(csv, plan.fields.length).rows.map((r) => toGpuRow(r, plan.keys));
    const first = now - config.gpuSamples * config.gpuIntervalMs;
    for (let i = 0; i < config.gpuSamples; i++) state.gpu.applySample(first + i * config.gpuIntervalMs, rows);
  }

  // Jobs: more finished jobs than the history keeps, each a 7-node graph with its share of the
  // artifacts, spread over the same hour.
  const tracker = state.comfy.tracker;
  const jobs = config.jobHistory + 10;
  const perJob = Math.ceil(config.artifacts / config.jobHistory);
  const spacing = Math.floor(3_600_000 / jobs);
  for (let j = 0; j < jobs; j++) {
    const id = promptId(j);
    const end = now - (jobs - j) * spacing;
    const images = Array.from({ length: perJob }, (_, k) => ({ filename: `ComfyUI_${String(j * perJob + k).padStart(5, '0')}_.png`, subfolder: 'runs', type: 'output' }));
    tracker.applyHistory(end, decodeHistoryEntry(id, {
      prompt: [j, id, txt2img({ seed: j, steps: 30 }), { client_id: `worker-${id}`, job_id: `job_${j}` }, ['9']],
      outputs: { 9: { images } },
      status: { status_str: 'success', completed: true, messages: [['execution_start', { prompt_id: id, timestamp: end - 5000 }], ['execution_success', { prompt_id: id, timestamp: end }]] },
      meta: {},
    }));
  }

  // Events: what a running job sends, four progress events for each GPU sample, until the replay
  // buffer holds as many events, or as many bytes, as it may.
  const events = state.events;
  const gpuData = state.gpu ? gpuEventData(state.gpu, now) : { sampled_at: new Date(now).toISOString(), gpus: [] };
  const full = () => {
    const st = events.ring.stats();
    return st.entries >= st.capacity_entries || st.bytes >= st.capacity_bytes * 0.95;
  };
  const job = { job_id: `job_${jobs - 1}`, prompt_id: promptId(jobs - 1) };
  for (let n = 0; !full() && n < 10 * config.events; n++) {
    if (n % 5 === 4) events.record('gpu', gpuData);
    else events.record('progress', { node_id: '3', class_type: 'KSampler', steps: n % 30, total: 30, progress_percent: Math.round(((n % 30) / 30) * 100) }, job);
  }

  // Logs: sampler progress and tracebacks until both bounds of the buffer are reached.
  const logs = state.logs;
  const limit = 5 * config.logLines;
  for (let n = 0; n < limit && (logs.ring.size < config.logLines || logs.ring.bytes < config.logBytes * 0.95); n++) {
    const text = n % 3 === 0
      ? `Traceback (most recent call last):\n${'  File "/comfyui/execution.py", line 496, in execute\n'.repeat(12)}RuntimeError: step ${n}`
      : ` 50%|█████     | ${n % 100}/100 [00:01<00:01,  1.95it/s] sampler step ${n}`;
    // Each line its own flat string, as lines decoded from ComfyUI's stream are (a repeat() or a
    // template here would be a rope sharing its parts, far smaller than a real line).
    const message = Buffer.from(text).toString();
    logs.append({ ts: now - (limit - n), level: 'info', source: 'comfyui', message, job_id: `job_${n % 200}` });
  }
}

/** What each bounded buffer holds against its capacity, from `state.buffers()` or /debug/memory's `buffers`. */
export function bufferFill(buffers) {
  const b = buffers ?? {};
  const of = (x) => (x ? `${x.entries}/${x.capacity_entries}` : 'n/a');
  return { gpu_timeline: of(b.gpu_timeline), jobs: of(b.jobs), artifacts: of(b.artifacts), events: of(b.events), logs: b.logs ? `${of(b.logs)} lines, ${Math.round(b.logs.bytes / 1024 / 1024)}/${Math.round(b.logs.capacity_bytes / 1024 / 1024)} MiB` : 'n/a' };
}
