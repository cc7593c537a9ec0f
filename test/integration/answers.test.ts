/**
 * Answers that agree with each other: one job id unknown everywhere is 404 everywhere, a trailing
 * slash names the same route, and what the HTTP parser refuses still has the envelope.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { startRig, until, type Rig } from '../helpers/comfy-rig.js';

let rig: Rig;

beforeAll(async () => {
  rig = await startRig();
  await until(async () => (await rig.get('/ready')).status === 200);
  await submit(rig.sim.url, txt2img({ steps: 2, seed: 31 }), { clientId: 'w', extra: { job_id: 'known-job' } });
  await until(async () => (await rig.get('/debug/workflow?job_id=known-job')).body.status === 'success');
});

afterAll(() => rig?.close());

describe('an unknown job id', () => {
  it.each(['/debug/workflow', '/debug/artifacts', '/debug/logs'])('is 404 JOB_NOT_FOUND on %s', async (path) => {
    const r = await rig.get(`${path}?job_id=no-such-job`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('JOB_NOT_FOUND');
  });

  it('a known job answers on /debug/logs, with its lines', async () => {
    const r = await rig.get('/debug/logs?job_id=known-job');
    expect(r.status).toBe(200);
    expect(r.body.lines.length).toBeGreaterThan(0);
  });
});

describe('a trailing slash', () => {
  it.each(['/debug/status/', '/debug/queue/', '/health/'])('names the same route: %s', async (path) => {
    const r = await rig.get(path);
    expect(r.status).toBe(200);
  });
});

describe('every answer says when it was made', () => {
  it.each(['/debug/status', '/debug/workflow', '/debug/queue', '/debug/logs', '/debug/memory', '/debug/artifacts'])('%s has sampled_at', async (path) => {
    const r = await rig.get(path);
    expect(r.status).toBe(200);
    expect(Date.parse(r.body.sampled_at)).toBeGreaterThan(0);
  });
});

describe('lists people read for the latest', () => {
  it('/debug/artifacts lists the newest outputs first', async () => {
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 32 }), { clientId: 'w', extra: { job_id: 'newer-job' } });
    await until(async () => (await rig.get('/debug/workflow?job_id=newer-job')).body.status === 'success');
    const r = await until(async () => {
      const a = await rig.get('/debug/artifacts');
      return a.body.artifacts.some((x: { job_id: string }) => x.job_id === 'newer-job') ? a : undefined;
    });
    expect(r.body.artifacts[0].job_id).toBe('newer-job');
  });
});

describe('buffer sizes in /debug/memory', () => {
  it('are real for the jobs and artifacts remembered, not 0', async () => {
    const r = await until(async () => {
      const m = await rig.get('/debug/memory');
      return m.body.podscope.buffers.artifacts.entries > 0 ? m : undefined;
    });
    const { jobs, artifacts } = r.body.podscope.buffers;
    expect(jobs.entries).toBeGreaterThan(0);
    expect(jobs.bytes).toBeGreaterThan(500 * jobs.entries);
    expect(artifacts.bytes).toBeGreaterThan(100 * artifacts.entries);
  });
});
