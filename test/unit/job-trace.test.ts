/**
 * The trace a finished job becomes (collectors/traces.ts), read from the real ComfyUI's recorded
 * prompts replayed through the job model: which spans, on whose clock, with what outcome.
 */
import { readFileSync } from 'node:fs';
import { Instances } from '../../src/state/instances.js';
import { describe, expect, it } from 'vitest';
import { jobTrace, TraceCollector } from '../../src/collectors/traces.js';
import { ComfyState } from '../../src/state/comfy.js';
import { HealthBoard } from '../../src/state/health.js';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { Scrubber } from '../../src/secrets.js';
import type { Job } from '../../src/shared/job-types.js';
import type { JobTrace, SpanPlan, TraceExportStats, TraceSink } from '../../src/shared/traces.js';

function recording(name: string): RawInput[] {
  return readFileSync(new URL(`../fixtures/comfyui/recordings/${name}.jsonl`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

/** The job a recording is about (its job id starts with `prefix`), replayed to its end. */
function replayed(name: string, prefix: string): Job {
  const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 100 });
  replay(comfy.tracker, recording(name), () => {});
  const job = comfy.tracker.all().find((j) => j.job_id.startsWith(prefix));
  if (!job) throw new Error(`no ${prefix} job in ${name}`);
  return job;
}

const traceOf = (job: Job, opts?: Parameters<typeof jobTrace>[1]) => jobTrace(job, opts)!;
const child = (root: SpanPlan, name: string) => root.children.find((c) => c.name === name)!;
const nodesOf = (root: SpanPlan) => root.children.filter((c) => c.name !== 'comfyui.queue');

describe('a prompt the tap followed on the real ComfyUI', () => {
  const job = replayed('tap-success', 'job-found-');
  const { root } = traceOf(job);

  it('is a job span from ComfyUI’s acceptance to its end', () => {
    expect(root.name).toBe('comfyui.job');
    expect(root.start).toBe(job.queued_at);
    expect(root.end).toBe(job.finished_at);
    expect(root.attributes).toMatchObject({ 'comfyui.prompt.id': job.prompt_id, 'podscope.job.id': job.job_id, 'comfyui.job.status': 'success', 'podscope.timing': 'comfyui' });
    expect(root.error).toBeNull();
  });

  it('has a queue child from acceptance to the start of execution', () => {
    const queue = child(root, 'comfyui.queue');
    expect(queue.start).toBe(job.queued_at);
    expect(queue.end).toBe(job.started_at);
    expect(queue.attributes['podscope.timing']).toBe('comfyui');
  });

  it('has a child per executed node, in graph order, on ComfyUI’s clock', () => {
    const nodes = nodesOf(root);
    expect(nodes.map((n) => n.name)).toEqual(['EmptyImage', 'PodscopeSlowLoad', 'PodscopeTqdmSampler', 'SaveImage']);
    for (const n of nodes) {
      const node = job.nodes.get(String(n.attributes['comfyui.node.id']))!;
      expect([n.start, n.end]).toEqual([node.started_at, node.finished_at]);
      expect(n.attributes['podscope.timing']).toBe('comfyui');
      expect(n.start).toBeGreaterThanOrEqual(root.start);
      expect(n.end).toBeLessThanOrEqual(root.end);
    }
  });

  it('gives each node its class, outcome and steps', () => {
    expect(child(root, 'PodscopeTqdmSampler').attributes).toMatchObject({ 'comfyui.node.class_type': 'PodscopeTqdmSampler', 'comfyui.node.status': 'completed', 'comfyui.node.cached': false, 'comfyui.node.steps': 8, 'comfyui.node.steps_total': 8 });
  });
});

describe('a prompt seen without the tap', () => {
  const job = replayed('observer-success', 'job-found-');
  const { root } = traceOf(job);

  it('starts the job span at ComfyUI’s execution_start, from /history', () => {
    expect(job.started_timing).toBe('comfyui');
    expect(root.start).toBe(job.started_at);
    expect(root.attributes['podscope.timing']).toBe('comfyui');
  });

  it('marks the queue span’s start unknown instead of inventing one (ComfyUI 0.3.64 stamps no acceptance time)', () => {
    const queue = child(root, 'comfyui.queue');
    expect(queue.attributes).toMatchObject({ 'podscope.start_unknown': true, 'podscope.timing': 'unknown' });
    expect(queue.start).toBe(queue.end);
  });

  it('marks nodes without a time from ComfyUI as unknown, zero-length at the job’s start', () => {
    for (const n of nodesOf(root)) {
      expect(n.attributes['podscope.start_unknown']).toBe(true);
      expect([n.start, n.end]).toEqual([root.start, root.start]);
    }
  });
});

describe('outcomes', () => {
  it('puts a node’s exception on its span, and the error type on the job', () => {
    const { root } = traceOf(replayed('tap-error', 'job-error-'));
    const raised = child(root, 'PodscopeRaise');
    expect(raised.error).toBe('podscope test node failed on purpose');
    const exception = raised.events.find((e) => e.name === 'exception')!;
    expect(exception.attributes['exception.type']).toBe('RuntimeError');
    expect(exception.attributes['exception.message']).toBe('podscope test node failed on purpose');
    expect(String(exception.attributes['exception.stacktrace'])).toContain('raise RuntimeError(message)');
    expect(exception.at).toBe(raised.end);
    expect(root.attributes['error.type']).toBe('RuntimeError');
    expect(root.error).toBe('RuntimeError in PodscopeRaise');
    expect(root.children.some((c) => c.name === 'SaveImage')).toBe(false);
  });

  it('says an interruption with events on the job and the node it stopped, without calling it an error', () => {
    const job = replayed('tap-interrupt', 'job-interrupt-');
    const { root } = traceOf(job);
    expect(root.error).toBeNull();
    expect(root.attributes['error.type']).toBeUndefined();
    expect(root.events).toEqual([{ name: 'comfyui.interrupted', at: job.finished_at, attributes: { 'comfyui.node.id': '3', 'comfyui.node.class_type': 'PodscopeTqdmSampler' } }]);
    const stopped = child(root, 'PodscopeTqdmSampler');
    expect(stopped.attributes['comfyui.node.status']).toBe('interrupted');
    expect(stopped.events.map((e) => e.name)).toEqual(['comfyui.interrupted']);
  });

  it('marks nodes replayed from cache', () => {
    const { root } = traceOf(replayed('tap-cached', 'job-cached-'));
    for (const n of nodesOf(root)) expect(n.attributes['comfyui.node.cached']).toBe(true);
  });

  it('gives a rejected prompt a job span with its reasons and no start', () => {
    const { root } = traceOf(replayed('tap-interrupt', 'job-rejected-'));
    expect(root.attributes).toMatchObject({ 'error.type': 'PromptRejected', 'podscope.start_unknown': true });
    expect(root.events[0]!.attributes['exception.message']).toContain('Value 0 smaller than min of 1');
  });
});

/** A finished job built by hand, for cases no recording holds. */
function handJob(over: Partial<Job> = {}): Job {
  const job = replayed('tap-success', 'job-found-');
  return { ...job, ...over };
}

describe('what the recordings do not hold', () => {
  it('is nothing while the job has not finished', () => {
    expect(jobTrace(handJob({ finished_at: null, status: 'running' }))).toBeNull();
  });

  it('continues the platform’s span from the traceparent, and keeps the job’s trace id for a root', () => {
    const parent = { trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16), flags: 1 };
    expect(traceOf(handJob({ trace_parent: parent, trace_id: parent.trace_id }))).toMatchObject({ parent, trace_id: parent.trace_id });
    expect(traceOf(handJob({ trace_parent: null, trace_id: 'c'.repeat(32) }))).toMatchObject({ parent: null, trace_id: 'c'.repeat(32) });
  });

  it('says a lost job with its reason, as an error ended at podscope’s observation', () => {
    // The end of a lost job is when podscope gave up on it, as the job model says.
    const { root } = traceOf(handJob({ status: 'lost', lost_reason: 'ComfyUI restarted while the job ran', error: null, finished_timing: 'observed' }));
    expect(root.error).toBe('ComfyUI restarted while the job ran');
    expect(root.attributes).toMatchObject({ 'error.type': 'comfyui_lost', 'podscope.timing': 'observed' });
    expect(root.events).toContainEqual({ name: 'comfyui.lost', at: root.end, attributes: { 'podscope.lost_reason': 'ComfyUI restarted while the job ran', 'podscope.timing': 'observed' } });
  });

  it('says a GPU out-of-memory error with an event carrying the node and the peak', () => {
    const base = handJob();
    const error = { node_id: '3', class_type: 'PodscopeTqdmSampler', exception_type: 'torch.OutOfMemoryError', exception_message: 'Allocation on device', traceback: [], forensics: { kind: 'gpu_oom', peak_vram_mb: 79_100 } };
    const { root } = traceOf({ ...base, status: 'error', error });
    expect(root.events).toContainEqual({ name: 'comfyui.oom', at: child(root, 'PodscopeTqdmSampler').end, attributes: { 'podscope.oom.kind': 'gpu', 'comfyui.node.id': '3', 'comfyui.node.class_type': 'PodscopeTqdmSampler', 'podscope.job.peak_vram_mb': 79_100 } });
  });

  it('says a probable system-RAM kill as an out-of-memory event of that kind', () => {
    const error = { node_id: null, class_type: null, exception_type: 'ProbableSystemRamOom', exception_message: 'ComfyUI vanished', traceback: [] };
    const { root } = traceOf(handJob({ status: 'lost', lost_reason: 'ComfyUI exited', error }));
    expect(root.events.find((e) => e.name === 'comfyui.oom')?.attributes['podscope.oom.kind']).toBe('system_ram_probable');
  });

  it('calls the job span observed when its end is podscope’s', () => {
    expect(traceOf(handJob({ finished_timing: 'observed' })).root.attributes['podscope.timing']).toBe('observed');
    expect(traceOf(handJob({ finished_timing: 'comfyui' })).root.attributes['podscope.timing']).toBe('comfyui');
  });

  it('carries the job’s GPU-seconds and peak VRAM', () => {
    const { root } = traceOf(handJob({ usage: { gpu_seconds: 12.5, busy_gpu_seconds: 9.25, peak_vram_mb: 20_480 } }));
    expect(root.attributes).toMatchObject({ 'podscope.job.gpu_seconds': 12.5, 'podscope.job.busy_gpu_seconds': 9.25, 'podscope.job.peak_vram_mb': 20_480 });
  });

  it('adds the stalls podscope declared while the job ran', () => {
    const { root } = traceOf(handJob(), { stalls: [{ at: 1_795_458_467_500, message: 'job x has shown no sign of life for 300 s' }] });
    expect(root.events).toContainEqual({ name: 'comfyui.stall', at: 1_795_458_467_500, attributes: { message: 'job x has shown no sign of life for 300 s', 'podscope.timing': 'observed' } });
  });

  it('scrubs secrets from every string it carries', () => {
    const scrubber = new Scrubber(['hf_SECRETSECRET']);
    const error = { node_id: '3', class_type: 'PodscopeTqdmSampler', exception_type: 'HTTPError', exception_message: 'GET https://huggingface.co?token=hf_SECRETSECRET failed', traceback: ['  at hf_SECRETSECRET\n'] };
    const trace = traceOf(handJob({ status: 'error', error }), { scrub: (t) => scrubber.scrub(t) });
    expect(JSON.stringify(trace)).not.toContain('hf_SECRETSECRET');
    expect(JSON.stringify(trace)).toContain('[REDACTED]');
  });
});

describe('the trace collector', () => {
  function setup() {
    const traces: JobTrace[] = [];
    const sink: TraceSink = { export: (t) => traces.push(t), stats: () => ({}) as TraceExportStats, shutdown: async () => {} };
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 100 });
    let now = 0;
    const health = new HealthBoard(() => now);
    const collector = new TraceCollector({ sink, instances: new Instances(comfy), health, scrubber: new Scrubber([]) });
    // The finish pipeline's step that exports the trace, alone.
    comfy.tracker.finishWith((job, refined) => collector.jobFinished(job, refined));
    collector.start(new AbortController().signal);
    return { traces, comfy, health, collector, at: (t: number) => (now = t) };
  }

  it('exports each job once, when it finishes', () => {
    const { traces, comfy } = setup();
    replay(comfy.tracker, recording('tap-success'), () => {});
    const ids = traces.map((t) => t.root.attributes['comfyui.prompt.id']);
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(replayed('tap-success', 'job-found-').prompt_id);
  });

  it('remembers a stall declared while a job ran and adds it to that job’s trace', () => {
    const { traces, comfy, health, at } = setup();
    const inputs = recording('tap-success');
    const target = replayed('tap-success', 'job-found-');
    let stalled = false;
    replay(comfy.tracker, inputs, () => {
      if (!stalled && comfy.tracker.running()?.prompt_id === target.prompt_id) {
        stalled = true;
        at(target.started_at! + 1);
        health.raise('comfyui', 'STALLED', `job ${target.job_id} has shown no sign of life`);
      }
    });
    const trace = traces.find((t) => t.root.attributes['comfyui.prompt.id'] === target.prompt_id)!;
    expect(trace.root.events).toContainEqual({ name: 'comfyui.stall', at: target.started_at! + 1, attributes: { message: `job ${target.job_id} has shown no sign of life`, 'podscope.timing': 'observed' } });
  });

  it('exports nothing once stopped', async () => {
    const { traces, comfy, collector } = setup();
    await collector.stop();
    replay(comfy.tracker, recording('tap-success'), () => {});
    expect(traces).toEqual([]);
  });
});
