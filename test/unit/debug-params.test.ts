/**
 * The query parameters of /debug/events and /debug/memory, and the text view of /debug/jobs:
 * what each accepts, and the 400 that names a bad one.
 */
import { describe, expect, it } from 'vitest';
import { LOOPBACK, testPod } from '../helpers/pod.js';
import { EventJournal } from '../../src/state/events.js';
import { GpuState } from '../../src/state/gpu.js';
import { renderJobs } from '../../src/shared/text-views.js';
import { fixtureRows } from '../helpers/gpu-rows.js';

async function problem(res: Response): Promise<{ status: number; parameter: string }> {
  const body = (await res.json()) as { error: { details: { parameter: string } } };
  return { status: res.status, parameter: body.error.details.parameter };
}

describe('/debug/events parameters', () => {
  function pod() {
    return testPod({}, undefined, { parts: { events: new EventJournal(100, 1024 * 1024) } });
  }

  it.each([
    ['an unknown type', 'types=job_finished,done', 'types'],
    ['no type at all', 'types=,,', 'types'],
    ['a job id with a space', 'job_id=a%20b', 'job_id'],
    ['a Last-Event-ID longer than 100 characters', `last_event_id=${'x'.repeat(101)}`, 'last_event_id'],
  ])('refuses %s with 400 naming the parameter', async (_name, query, parameter) => {
    expect(await problem(await pod().app.request(`/debug/events?${query}`, {}, LOOPBACK))).toEqual({ status: 400, parameter });
  });
});

describe('/debug/memory?points=', () => {
  function pod() {
    const gpu = new GpuState({ startedAt: 0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 3600 });
    for (let i = 0; i < 700; i++) gpu.applySample(i * 1000, fixtureRows('h200-x1.drv590.load'));
    return testPod({}, undefined, { parts: { gpu } });
  }
  const points = async (query: string) => ((await (await pod().app.request(`/debug/memory${query}`, {}, LOOPBACK)).json()) as { timeline: { points: unknown[] } }).timeline.points.length;

  it('answers the newest 120 points by default', async () => {
    expect(await points('')).toBe(120);
  });

  it('answers as many as asked, the page’s ten minutes among them', async () => {
    expect(await points('?points=600')).toBe(600);
  });

  it.each(['0', '3601', 'ten'])('refuses points=%s', async (n) => {
    expect(await problem(await pod().app.request(`/debug/memory?points=${n}`, {}, LOOPBACK))).toEqual({ status: 400, parameter: 'points' });
  });
});

describe('the text view of /debug/jobs', () => {
  it('shows a row per job with unknowns as a dash, and how many of how many', () => {
    const text = renderJobs({
      jobs: [
        { job_id: 'job_2', status: 'error', duration_s: 0.3, gpu_seconds: 0.61, peak_vram_mb: null, finished_at: '2026-11-24T00:00:01.000Z', error: { exception_type: 'torch.OutOfMemoryError', message: 'Allocation on device' }, lost_reason: null },
        { job_id: 'job_1', status: 'lost', duration_s: null, gpu_seconds: null, peak_vram_mb: 35943, finished_at: null, started_at: null, queued_at: null, error: null, lost_reason: 'ComfyUI restarted' },
      ],
      total: 5,
      sampled_at: '2026-11-24T00:00:02.000Z',
    });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^JOB\s+STATUS\s+DURATION\s+GPU-S\s+PEAK VRAM\s+AT\s+ERROR$/);
    expect(lines[1]).toMatch(/^job_2\s+error\s+0\.3 s\s+0\.61\s+-\s+2026-11-24T00:00:01\.000Z\s+torch\.OutOfMemoryError: Allocation on device$/);
    expect(lines[2]).toMatch(/^job_1\s+lost\s+-\s+-\s+35943 MiB\s+-\s+ComfyUI restarted$/);
    expect(lines[3]).toBe('2 of 5 (sampled 2026-11-24T00:00:02.000Z)');
  });

  it('says so when no job is remembered', () => {
    expect(renderJobs({ jobs: [], total: 0, sampled_at: null })).toBe('no jobs remembered\n0 of 0 (sampled -)\n');
  });
});
