/**
 * GET /debug/events through a real server, with the simulated ComfyUI running prompts: the events
 * a harness follows a job by, filters, resuming with Last-Event-ID, heartbeats, a reader too slow
 * to keep up, and the end of the stream when podscope stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, until, type Rig } from '../helpers/comfy-rig.js';
import { openSse, type SseStream } from '../helpers/sse.js';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { startPodscope } from '../../src/main.js';

let rig: Rig;
const streams: SseStream[] = [];
beforeAll(async () => {
  rig = await startRig({ stepMs: 30 }, { PODSCOPE_FOLLOW_HEARTBEAT_MS: '300' });
});
afterAll(async () => {
  for (const s of streams) s.close();
  await rig.close();
});

async function events(query = '', headers: Record<string, string> = {}): Promise<SseStream> {
  const s = await openSse(`${rig.base}/debug/events${query}`, headers);
  streams.push(s);
  return s;
}

let n = 0;
async function run(steps = 4): Promise<string> {
  const jobId = `job-events-${++n}`;
  const r = await submit(rig.sim.url, txt2img({ steps, seed: n }), { extra: { job_id: jobId } });
  expect(r.status).toBe(200);
  return jobId;
}

describe('following a job', () => {
  it('answers an event stream that says which boot it comes from', async () => {
    const s = await events();
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(s.headers.get('cache-control')).toBe('no-cache, no-store');
    await until(() => s.comments.find((c) => c.startsWith('podscope events ')));
  });

  it('says a job was queued, started, ran its nodes with progress, and finished, in that order', async () => {
    const s = await events();
    const jobId = await run(6);
    const end = await s.waitFor((f) => f.event === 'job_finished' && f.json.job_id === jobId);
    expect(end.json).toMatchObject({ status: 'success', error: null });
    const mine = s.frames.filter((f) => f.json?.job_id === jobId).map((f) => f.event);
    expect(mine[0]).toBe('job_queued');
    expect(mine.indexOf('job_started')).toBeGreaterThan(0);
    expect(mine).toContain('node_started');
    expect(mine).toContain('progress');
    expect(mine.lastIndexOf('node_finished')).toBeLessThan(mine.indexOf('job_finished'));
  });

  it('numbers events in order under one boot', async () => {
    const s = await events();
    const jobId = await run();
    await s.waitFor((f) => f.event === 'job_finished' && f.json.job_id === jobId);
    const ids = s.frames.filter((f) => f.id).map((f) => f.id!.split('-'));
    expect(new Set(ids.map(([boot]) => boot)).size).toBe(1);
    const seqs = ids.map(([, seq]) => Number(seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('keeps one job’s events with ?job_id=, whichever id the job is followed by', async () => {
    const jobId = `job-events-${++n}`;
    const s = await events(`?job_id=${jobId}`);
    const other = await run();
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 999 }), { extra: { job_id: jobId } });
    await s.waitFor((f) => f.event === 'job_finished');
    expect(new Set(s.frames.map((f) => f.json.job_id))).toEqual(new Set([jobId]));
    expect(s.frames.some((f) => f.json.job_id === other)).toBe(false);
  });

  it('keeps only the types named in ?types=', async () => {
    const s = await events('?types=job_queued,job_finished');
    const jobId = await run();
    await s.waitFor((f) => f.event === 'job_finished' && f.json.job_id === jobId);
    expect(new Set(s.frames.map((f) => f.event))).toEqual(new Set(['job_queued', 'job_finished']));
  });

  it('refuses a type it does not know, listing those it does', async () => {
    const res = await fetch(`${rig.base}/debug/events?types=job_finished,nope`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; details: { parameter: string } } };
    expect(body.error.code).toBe('INVALID_PARAMETER');
    expect(body.error.details.parameter).toBe('types');
    expect(body.error.message).toMatch(/job_queued, job_started/);
  });
});

describe('resuming', () => {
  it('sends every event missed while away, starting right after Last-Event-ID', async () => {
    const first = await events();
    const a = await run();
    const seen = await first.waitFor((f) => f.event === 'job_finished' && f.json.job_id === a);
    first.close();
    const b = await run();
    // Wait until podscope has recorded b's end, then come back.
    await until(async () => (await (await fetch(`${rig.base}/debug/workflow?job_id=${b}`)).json() as { status: string }).status === 'success');
    const again = await events('', { 'last-event-id': seen.id! });
    await again.waitFor((f) => f.event === 'job_finished' && f.json.job_id === b);
    const [boot, seq] = seen.id!.split('-');
    const firstReplayed = again.frames.find((f) => f.id)!;
    expect(firstReplayed.id).toBe(`${boot}-${Number(seq) + 1}`);
    expect(again.frames.some((f) => f.event === 'gap')).toBe(false);
  });

  it('takes the id from ?last_event_id= for clients that cannot set the header', async () => {
    const first = await events();
    const a = await run();
    const seen = await first.waitFor((f) => f.event === 'job_queued' && f.json.job_id === a);
    const again = await events(`?last_event_id=${seen.id}`);
    await again.waitFor((f) => f.event === 'job_finished' && f.json.job_id === a);
    expect(again.frames.find((f) => f.id)!.id).not.toBe(seen.id);
  });

  it('says first when the events asked for are gone (an id from another boot), then replays what is held', async () => {
    const s = await events('?types=job_finished', { 'last-event-id': '0badc0de-3' });
    const gap = await s.waitFor((f) => f.event === 'gap');
    expect(gap.id).toBeUndefined();
    expect(gap.json.reason).toMatch(/^podscope restarted since that event/);
    expect(s.frames[0]!.event).toBe('gap');
    await s.waitFor((f) => f.event === 'job_finished');
  });
});

describe('a quiet stream', () => {
  it('is kept open with heartbeats', async () => {
    const s = await events('?job_id=never-submitted');
    await until(() => s.comments.filter((c) => c === 'heartbeat').length >= 2, 15_000);
    expect(s.ended()).toBe(false);
  });

  it('is counted while open', async () => {
    await events('?job_id=counted');
    const text = await (await fetch(`${rig.base}/metrics`)).text();
    expect(Number(/^podscope_event_streams (\d+)/m.exec(text)![1])).toBeGreaterThanOrEqual(1);
  });
});

describe('HEAD', () => {
  it('answers an event stream’s headers and leaves no stream open', async () => {
    const journal = rig.pod.state.events;
    const open = journal.streams.open;
    for (const path of ['/debug/events', '/debug/logs?follow=1']) {
      const res = await fetch(`${rig.base}${path}`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    }
    expect(journal.streams.open).toBe(open);
    expect(rig.pod.state.logs.subscriberCount).toBe(0);
  });
});

describe('a reader too slow to keep up', () => {
  it('is dropped with a last event saying so, and counted, instead of buffered without bound', async () => {
    const pod = await startPodscope({
      env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'silent' },
      sinks: [],
    });
    try {
      const res = await fetch(`http://127.0.0.1:${pod.port}/debug/events`);
      // Never read: 64 MiB of events offered faster than the socket drains.
      const journal = pod.state.events!;
      const pad = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 4096 && journal.streams.dropped === 0; i++) {
        journal.record('problem_started', { message: pad });
        if (i % 64 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => journal.streams.dropped === 1);
      expect(journal.streams.open).toBe(0);
      const text = await res.text();
      expect(text.endsWith('event: dropped\ndata: {"reason":"reader too slow: reconnect with Last-Event-ID to resume"}\n\n')).toBe(true);
      const metrics = await (await fetch(`http://127.0.0.1:${pod.port}/metrics`)).text();
      expect(metrics).toMatch(/^podscope_event_streams_dropped_total 1$/m);
    } finally {
      await pod.close();
    }
  });
});

describe('when podscope stops', () => {
  it('ends every stream with an end event', async () => {
    const pod = await startPodscope({
      env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'silent' },
      sinks: [],
    });
    const s = await openSse(`http://127.0.0.1:${pod.port}/debug/events`);
    await until(() => s.comments.length > 0);
    await pod.close();
    const end = await s.waitFor((f) => f.event === 'end');
    expect(end.json).toEqual({ reason: 'podscope is stopping' });
    await until(() => s.ended());
  });
});
