/**
 * /debug/workflow and /debug/queue as views of the state (views/jobs.ts), built from the real
 * ComfyUI's recorded prompts: what a harness reads, and what is null because it is not known.
 */
import { readFileSync } from 'node:fs';
import { gpuUse } from '../helpers/gpu-use.js';
import { describe, expect, it } from 'vitest';
import { jobsView, queueView, workflowView } from '../../src/views/jobs.js';
import { LOOPBACK, testPod } from '../helpers/pod.js';
import { ComfyState } from '../../src/state/comfy.js';
import { PROGRESS_UNKNOWN } from '../../src/views/comfy.js';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';

function recording(name: string): RawInput[] {
  return readFileSync(new URL(`../fixtures/comfyui/recordings/${name}.jsonl`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

function replayed(name: string) {
  const comfy = new ComfyState('http://127.0.0.1:8188', { jobIdKey: 'job_id', historyLimit: 100 });
  replay(comfy.tracker, recording(name));
  return comfy;
}

const NOW = Date.parse('2026-11-24T00:00:00Z');

describe('/debug/workflow of a prompt followed by the tap', () => {
  const comfy = replayed('tap-success');
  const job = comfy.tracker.all().find((j) => j.job_id.startsWith('job-found-'))!;
  const view = workflowView(comfy, gpuUse(null, comfy), job, NOW);

  it('has the job’s ids, outcome and full progress', () => {
    expect(view).toMatchObject({ job_id: job.job_id, prompt_id: job.prompt_id, status: 'success', progress_percent: 100 });
    expect(view).not.toHaveProperty('progress_unknown_reason');
  });

  it('lists every node in graph order with an id made of its class and node id', () => {
    expect(view.nodes.map((n) => n.id)).toEqual(view.nodes.map((n) => `${n.class_type}_${n.node_id}`));
    expect(view.nodes_completed).toBe(view.nodes_total);
  });

  it('times every node on ComfyUI’s clock, its duration the difference of its times', () => {
    for (const n of view.nodes) {
      expect(n.timing).toBe('comfyui');
      expect(n.duration_ms).toBe(Date.parse(n.finished_at!) - Date.parse(n.started_at!));
    }
  });

  it('gives the run time from start to finish, to a tenth of a second', () => {
    expect(view.duration_s).toBe(Math.round((job.finished_at! - job.started_at!) / 100) / 10);
    expect(view.started_timing).toBe('comfyui');
  });

  it('says GPU use is unknown (null) on a pod without GPU sampling, never 0', () => {
    expect([view.gpu_seconds, view.busy_gpu_seconds, view.peak_vram_mb]).toEqual([null, null, null]);
  });

  it('says when it was made', () => {
    expect(view.sampled_at).toBe('2026-11-24T00:00:00.000Z');
  });
});

describe('/debug/workflow of another client’s prompt without the tap', () => {
  const comfy = replayed('observer-success');
  const job = comfy.tracker.all().find((j) => j.status === 'success' && j.nodes.size > 0)!;
  const view = workflowView(comfy, gpuUse(null, comfy), job, NOW);

  it('leaves the times of nodes it could not see null, and their durations too', () => {
    const unseen = view.nodes.filter((n) => n.started_at === null);
    expect(unseen.length).toBeGreaterThan(0);
    for (const n of unseen) expect(n.duration_ms).toBeNull();
  });

  it('still has the job’s start and end from ComfyUI’s history', () => {
    expect(view.started_at).not.toBeNull();
    expect(view.finished_at).not.toBeNull();
  });
});

describe('/debug/workflow of a prompt whose graph is not known yet', () => {
  it('gives progress as unknown, with the reason', () => {
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
    comfy.tracker.apply(1000, { type: 'execution_start', prompt_id: 'P', ts: 1000 });
    const view = workflowView(comfy, gpuUse(null, comfy), comfy.tracker.get('P')!, 5000);
    expect(view.progress_percent).toBeNull();
    expect(view.progress_unknown_reason).toBe(PROGRESS_UNKNOWN);
    expect(view.duration_s).toBe(4);
    expect(view.finished_at).toBeNull();
  });
});

describe('/debug/workflow of a prompt that failed', () => {
  it('carries ComfyUI’s error whole', () => {
    const comfy = replayed('tap-error');
    const job = comfy.tracker.all().find((j) => j.status === 'error')!;
    const view = workflowView(comfy, gpuUse(null, comfy), job, NOW);
    expect(view.error).toMatchObject({ exception_message: 'podscope test node failed on purpose' });
    expect(view.nodes.map((n) => n.status)).toContain('skipped');
  });
});

describe('/debug/queue', () => {
  function queued() {
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
    const graph = { '1': { class_type: 'A', inputs: {} }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0] } } };
    const item = (n: number, id: string) => decodeQueueItem([n, id, graph, { job_id: `job-${id}`, client_id: 'c1' }, ['2']])!;
    comfy.tracker.applyQueue(1000, [item(1, 'A')], [item(3, 'C'), item(2, 'B')]);
    return comfy;
  }

  it('lists the running job and the pending ones with their 1-based positions', () => {
    const v = queueView([queued()], 2000);
    expect(v.running.map((j) => j.job_id)).toEqual(['job-A']);
    expect(v.pending.map((j) => [j.job_id, j.position])).toEqual([
      ['job-B', 1],
      ['job-C', 2],
    ]);
  });

  it('counts the nodes each queued job needs, and shows its client and extra data', () => {
    const j = queueView([queued()], 2000).pending[0]!;
    expect(j).toMatchObject({ nodes_total: 2, client_id: 'c1', extra_data: { job_id: 'job-B' } });
  });

  it('takes the queue length from ComfyUI when it said it, else counts the queue', () => {
    const comfy = queued();
    expect(queueView([comfy], 2000).queue_remaining).toBe(3);
    comfy.queueRemainingIs(7);
    expect(queueView([comfy], 2000).queue_remaining).toBe(7);
  });

  it('lists rejections with their times, reasons and where they were learnt', () => {
    const comfy = queued();
    comfy.addRejection({ at: 1500, job_id: 'job-X', prompt_id: 'X', reasons: ['KSampler 3: Value smaller than min of 1: steps'], lines: [], source: 'tap' });
    expect(queueView([comfy], 2000).rejected).toEqual([
      { at: '1970-01-01T00:00:01.500Z', instance: 'x', job_id: 'job-X', prompt_id: 'X', reasons: ['KSampler 3: Value smaller than min of 1: steps'], lines: [], source: 'tap' },
    ]);
  });

  it('says as of when its newest fact is, so answers can be ordered', () => {
    const v = queueView([queued()], 2000);
    expect(v.as_of).toBe('1970-01-01T00:00:01.000Z');
    expect(v.sampled_at).toBe('1970-01-01T00:00:02.000Z');
  });
});

describe('/debug/jobs', () => {
  function remembered() {
    const comfy = replayed('tap-interrupt');
    return comfy;
  }

  it('lists every remembered job, newest first', () => {
    const comfy = remembered();
    const v = jobsView([comfy], gpuUse(null), NOW, { limit: 50 });
    expect(v.total).toBe(comfy.tracker.size);
    const finished = v.jobs.filter((j) => j.finished_at !== null);
    expect(finished.length).toBeGreaterThan(2);
    for (let i = 1; i < finished.length; i++) expect(Date.parse(finished[i - 1]!.finished_at!)).toBeGreaterThanOrEqual(Date.parse(finished[i]!.finished_at!));
  });

  it('gives each job its outcome, run time and the error in brief', () => {
    const v = jobsView([remembered()], gpuUse(null), NOW, { limit: 50 });
    const failed = v.jobs.find((j) => j.status === 'error' && j.job_id?.startsWith('job-error-'))!;
    expect(failed.error).toMatchObject({ class_type: 'PodscopeRaise', message: 'podscope test node failed on purpose' });
    expect(failed.duration_s).toEqual(expect.any(Number));
    const ok = v.jobs.find((j) => j.status === 'success')!;
    expect(ok.error).toBeNull();
  });

  it('says GPU use is unknown (null) on a pod without GPU sampling', () => {
    for (const j of jobsView([remembered()], gpuUse(null), NOW, { limit: 50 }).jobs) {
      expect(j.gpu_seconds).toBeNull();
      expect(j.peak_vram_mb).toBeNull();
    }
  });

  it('keeps one status, or every finished one', () => {
    const comfy = remembered();
    expect(new Set(jobsView([comfy], gpuUse(null), NOW, { status: 'success', limit: 50 }).jobs.map((j) => j.status))).toEqual(new Set(['success']));
    const finished = jobsView([comfy], gpuUse(null), NOW, { status: 'finished', limit: 50 });
    expect(finished.jobs.every((j) => ['success', 'error', 'interrupted', 'lost'].includes(j.status))).toBe(true);
    expect(finished.total).toBe(comfy.tracker.all().filter((j) => j.status !== 'queued' && j.status !== 'running').length);
  });

  it('answers at most the limit, and says how many there are', () => {
    const v = jobsView([remembered()], gpuUse(null), NOW, { limit: 2 });
    expect(v.jobs).toHaveLength(2);
    expect(v.total).toBeGreaterThan(2);
  });

  it('is served as JSON and as text, and refuses a status it does not know', async () => {
    const pod = testPod({}, undefined, { parts: { comfy: remembered() } });
    const json = await pod.app.request('/debug/jobs?limit=3', {}, LOOPBACK);
    expect(json.status).toBe(200);
    expect(((await json.json()) as { jobs: unknown[] }).jobs).toHaveLength(3);
    const text = await (await pod.app.request('/debug/jobs?format=text', {}, LOOPBACK)).text();
    expect(text.split('\n')[0]).toMatch(/^JOB\s+STATUS\s+DURATION\s+GPU-S\s+PEAK VRAM\s+AT\s+ERROR/);
    expect(text).toMatch(/RuntimeError: podscope test node failed on purpose/);
    const bad = await pod.app.request('/debug/jobs?status=done', {}, LOOPBACK);
    expect(bad.status).toBe(400);
    expect((await pod.app.request('/debug/jobs?limit=0', {}, LOOPBACK)).status).toBe(400);
  });
});
