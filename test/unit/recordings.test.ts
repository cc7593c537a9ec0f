/**
 * Recordings of what the real ComfyUI 0.3.64 sent podscope (frames and HTTP answers, with
 * podscope's arrival times), captured by the conformance suite (`npm run test:comfyui`), replayed
 * through the real decoder and the job reducer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { JobTracker, type Job, type JobNode } from '../../src/state/jobs.js';

const DIR = new URL('../fixtures/comfyui/recordings/', import.meta.url);

function load(name: string): RawInput[] {
  return readFileSync(new URL(`${name}.jsonl`, DIR), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

/** Replays a recording and returns the job whose platform id starts with `prefix`. */
function jobOf(name: string, prefix: string): Job {
  const tracker = new JobTracker({ jobIdKey: 'job_id', historyLimit: 100 });
  replay(tracker, load(name));
  const job = tracker.all().find((j) => j.job_id.startsWith(prefix));
  if (!job) throw new Error(`no job ${prefix}* in ${name}: ${tracker.all().map((j) => j.job_id).join(', ')}`);
  return job;
}

const node = (job: Job, id: string): JobNode => job.nodes.get(id)!;
const statuses = (job: Job) => job.order.map((id) => [id, job.nodes.get(id)!.status]);

describe('replaying the real ComfyUI with the tap node', () => {
  it('a sampler prompt: every node timed by ComfyUI, the slow loader at its real duration', () => {
    const job = jobOf('tap-success', 'job-found-');
    expect(job.status).toBe('success');
    expect(job.progress).toBe(100);
    expect(statuses(job)).toEqual([['1', 'completed'], ['2', 'completed'], ['3', 'completed'], ['4', 'completed']]);
    for (const id of ['1', '2', '3', '4']) expect(node(job, id).timing).toBe('comfyui');
    const loader = node(job, '2');
    expect(loader.finished_at! - loader.started_at!).toBeGreaterThanOrEqual(350);
    expect(node(job, '3')).toMatchObject({ steps: 8, total: 8 });
    expect(job.started_timing).toBe('comfyui');
  });

  it('a sampler prompt: queued, started and finished in that order', () => {
    const job = jobOf('tap-success', 'job-found-');
    expect(job.queued_at).not.toBeNull();
    expect(job.queued_at!).toBeLessThanOrEqual(job.started_at!);
    expect(job.started_at!).toBeLessThanOrEqual(job.finished_at!);
  });

  it('a node that raises: the error, the node in error, the node after it skipped', () => {
    const job = jobOf('tap-error', 'job-error-');
    expect(job.status).toBe('error');
    expect(job.error).toMatchObject({ node_id: '2', class_type: 'PodscopeRaise', exception_type: 'RuntimeError', exception_message: 'podscope test node failed on purpose' });
    expect(job.error!.traceback.length).toBeGreaterThan(0);
    expect(statuses(job)).toEqual([['1', 'completed'], ['2', 'error'], ['3', 'skipped']]);
  });

  it('a fully cached re-run: its own job id, every node cached, its output replayed', () => {
    const job = jobOf('tap-cached', 'job-cached-');
    expect(job.status).toBe('success');
    expect(job.identity_known).toBe(true);
    expect(statuses(job)).toEqual([['1', 'cached'], ['2', 'cached']]);
    expect(job.outputs).toHaveLength(1);
    expect(job.outputs[0]!.cached).toBe(true);
  });

  it('an interrupt: the cut-off sampler interrupted with its steps, the output node skipped', () => {
    const job = jobOf('tap-interrupt', 'job-interrupt-');
    expect(job.status).toBe('interrupted');
    expect(node(job, '3').status).toBe('interrupted');
    expect(node(job, '3').steps!).toBeGreaterThanOrEqual(3);
    expect(node(job, '4').status).toBe('skipped');
  });

  it('a prompt without client_id: node by node all the same', () => {
    const job = jobOf('tap-no-client', 'job-no-client-');
    expect(job.status).toBe('success');
    expect(job.client_id).toBeNull();
    expect(node(job, '2').timing).toBe('comfyui');
    expect(node(job, '3')).toMatchObject({ status: 'completed', steps: 10, total: 10 });
  });

  it('a 20 ms prompt: found by its job id', () => {
    const job = jobOf('tap-quick', 'job-quick-');
    expect(job.status).toBe('success');
    expect(job.outputs).toHaveLength(1);
  });
});

describe('replaying the real ComfyUI without the tap node', () => {
  it("another client's prompt: outcome, ids and ComfyUI's times from /history; node times unknown, not zero", () => {
    const job = jobOf('observer-success', 'job-found-');
    expect(job.status).toBe('success');
    expect(job.started_timing).toBe('comfyui');
    expect(statuses(job)).toEqual([['1', 'completed'], ['2', 'completed'], ['3', 'completed'], ['4', 'completed']]);
    const loader = node(job, '2');
    expect(loader.started_at).toBeNull();
    expect(loader.finished_at).toBeNull();
    expect(loader.timing).toBeNull();
  });

  it("another client's failing prompt: the error from /history", () => {
    const job = jobOf('observer-error', 'job-error-');
    expect(job.status).toBe('error');
    expect(job.error).toMatchObject({ node_id: '2', exception_type: 'RuntimeError' });
    expect(node(job, '2').status).toBe('error');
    expect(node(job, '3').status).toBe('skipped');
  });

  it("another client's interrupted prompt: the node ComfyUI names is interrupted, not skipped", () => {
    const job = jobOf('observer-interrupt', 'job-interrupt-');
    expect(job.status).toBe('interrupted');
    expect(node(job, '3').status).toBe('interrupted');
    expect(node(job, '4').status).toBe('skipped');
  });

  it('a prompt without client_id: broadcast progress shows the sampler, and progress never reads 95 or more before the end', () => {
    const tracker = new JobTracker({ jobIdKey: 'job_id', historyLimit: 100 });
    const seen: number[] = [];
    for (const input of load('observer-no-client')) {
      replay(tracker, [input]);
      const job = tracker.all().find((j) => j.job_id.startsWith('job-no-client-'));
      if (job && job.status === 'running' && job.progress !== null) seen.push(job.progress);
    }
    expect(seen.length).toBeGreaterThan(3);
    expect(Math.max(...seen)).toBeLessThan(95);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    const job = tracker.all().find((j) => j.job_id.startsWith('job-no-client-'))!;
    expect(job.status).toBe('success');
    expect(job.progress).toBe(100);
  });

  it('fast and cached prompts: found under their job ids', () => {
    expect(jobOf('observer-quick', 'job-quick-').status).toBe('success');
    const cached = jobOf('observer-cached', 'job-cached-');
    expect(statuses(cached)).toEqual([['1', 'cached'], ['2', 'cached']]);
  });
});

describe('every recording replays without an error', () => {
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.jsonl'))) {
    it(file, () => {
      const tracker = new JobTracker({ jobIdKey: 'job_id', historyLimit: 100 });
      expect(() => replay(tracker, load(file.replace(/\.jsonl$/, '')))).not.toThrow();
      expect(tracker.size).toBeGreaterThan(0);
    });
  }
});
