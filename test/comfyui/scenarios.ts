/**
 * The conformance scenarios, run against a real ComfyUI with the tap node installed and without
 * it. Each scenario submits prompts as the platform's worker does, polls podscope as a harness
 * does, and holds podscope's answers to what ComfyUI really did.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealComfy } from './real-comfy.js';
import { openSse } from '../helpers/sse.js';
import { failingGraph, fresh, invalidGraph, markerGraph, quickGraph, samplerGraph, saveRecording, startRealRig, Submitter, until, Watcher, type Pod, type RealRig, type Sample } from './harness.js';
import { fact, limitOf, progressStateOf, RELEASE } from './release.js';

export type Mode = 'tap' | 'observer';

const BIN = fileURLToPath(new URL('../../bin/podscope.js', import.meta.url));

/** The goals: found by job id within 1 s of the POST; the outcome within 1 s (200 ms with the tap) of the submitter's terminal event. */
const FOUND_MS = 1000;
const outcomeMs = (mode: Mode) => (mode === 'tap' ? 200 : 1000);

const jobId = (what: string) => `job-${what}-${randomUUID().slice(0, 8)}`;

/** The first sample at or after `from` that satisfies `pred`. */
function firstAfter(samples: Sample[], from: number, pred: (s: Sample) => boolean): Sample | undefined {
  return samples.find((s) => s.at >= from && pred(s));
}

export function conformance(mode: Mode): void {
  describe(`podscope against the real ComfyUI ${RELEASE} (${mode === 'tap' ? 'with the tap node' : 'without the tap node'})`, () => {
    let rig: RealRig;
    let comfy: RealComfy;
    let pod: Pod;
    let worker: Submitter;

    /** A scenario, or, where this release cannot support it, the same marked with the reason. */
    const scenario = (title: string, fn: () => Promise<void>, timeout?: number) => {
      const why = limitOf(title, mode);
      if (why) it.skip(`${title} [${why}]`, fn);
      else it(title, fn, timeout);
    };

    beforeAll(async () => {
      rig = await startRealRig(mode);
      ({ comfy, pod, worker } = rig);
      await until(async () => (await pod.get('/ready')).status === 200 || null, 30_000);
    }, 180_000);

    afterAll(async () => {
      await rig?.close();
    });

    /** Waits until the log file and the websocket have each delivered a line containing `text` (after `since`, by the test's clock). */
    async function bothOriginsDelivered(text: string, since = 0): Promise<void> {
      const delivered = (origin: 'stream' | 'file') => pod.logRecords.some((r) => r.origin === origin && r.at >= since && r.text.includes(text));
      await until(() => (delivered('stream') && delivered('file')) || null, 20_000);
    }

    /** Submits, watches /debug/workflow?job_id= until the job ends, and returns everything seen. */
    async function run(graph: ReturnType<typeof samplerGraph>, id: string, opts: { client?: boolean; name?: string; statusEvery?: number } = {}) {
      const watcher = new Watcher(pod, `/debug/workflow?job_id=${id}`);
      const status = new Watcher(pod, '/debug/status', opts.statusEvery ?? 50);
      const posted = await worker.submit(graph, id, opts);
      expect(posted.status).toBe(200);
      const promptId = posted.promptId!;
      const end = await until(async () => {
        const r = await pod.get(`/debug/workflow?job_id=${id}`);
        return r.status === 200 && ['success', 'error', 'interrupted', 'lost'].includes(r.body.status) && r.body.prompt_id === promptId ? r : null;
      }, 60_000);
      // Each watcher has looked at least once after the outcome showed.
      await until(() => [watcher, status].every((w) => w.samples.some((x) => x.at > end.at)) || null, 10_000, 10);
      const samples = await watcher.stop();
      const statuses = await status.stop();
      if (opts.name) saveRecording(`${mode}-${opts.name}`, pod.raw, posted.postedAt - 50);
      return { promptId, posted, end, samples, statuses };
    }

    scenario('says plainly what it can see of other clients’ prompts in this mode', async () => {
      const s = await pod.get('/debug/status');
      expect(s.body.comfyui.visibility.mode).toBe(mode);
      expect(s.body.comfyui.visibility.sees).toMatch(mode === 'tap' ? /every prompt from every client, node by node/ : /without the tap node/);
      expect(s.body.comfyui.tap_version).toBe(mode === 'tap' ? '2' : null);
    });

    scenario('finds a job by its job id within 1 s of the POST, and never shows it under another id', async () => {
      const id = jobId('found');
      // /debug/status polled every 10 ms: the window between a prompt's first frame and the /queue look is short.
      const { posted, samples, statuses } = await run(samplerGraph({ steps: 8, stepMs: 100 }), id, { name: 'success', statusEvery: 10 });
      const found = firstAfter(samples, posted.postedAt, (s) => s.status === 200);
      expect(found, 'never found by its job id').toBeDefined();
      expect(found!.at - posted.postedAt).toBeLessThanOrEqual(FOUND_MS + 100);
      for (const s of samples.filter((x) => x.status === 200)) expect(s.body.job_id).toBe(id);
      // Every current job shown while it ran is this one (its job id, or null while its extra_data is unread).
      const others = statuses.filter((s) => s.body.current_job && ![id, null].includes(s.body.current_job.job_id));
      expect(others.map((s) => s.body.current_job.job_id)).toEqual([]);
    });

    scenario("reports the outcome soon after the submitter's terminal event", async () => {
      const id = jobId('outcome');
      const { promptId, samples } = await run(samplerGraph({ steps: 5, stepMs: 80 }), id);
      const terminal = await worker.terminal(promptId);
      const done = firstAfter(samples, 0, (s) => s.status === 200 && s.body.status === 'success');
      expect(done, 'success never shown').toBeDefined();
      expect(done!.at - terminal.at).toBeLessThanOrEqual(outcomeMs(mode) + 50);
    });

    scenario('raises progress with the work, never lowers it, and stays below 95 until the last 10 % of the run', async () => {
      const id = jobId('progress');
      const { samples, end } = await run(samplerGraph({ steps: 20, stepMs: 100, loadMs: 300 }), id);
      expect(end.body.progress_percent).toBe(100);
      const seen = samples.filter((s) => s.status === 200 && s.body.status === 'running');
      const values = seen.map((s) => s.body.progress_percent).filter((p): p is number => p !== null);
      for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThanOrEqual(values[i - 1]!);
      // Rises with the work: several distinct values between the first and the last step.
      expect(new Set(values.filter((v) => v > 5 && v < 95)).size).toBeGreaterThanOrEqual(3);
      const started = Date.parse(end.body.started_at);
      const finished = Date.parse(end.body.finished_at);
      const lastTenth = finished - 0.1 * (finished - started);
      const early = seen.filter((s) => s.at < lastTenth && s.body.progress_percent !== null);
      expect(early.length).toBeGreaterThan(0);
      expect(early.filter((s) => s.body.progress_percent >= 95).map((s) => s.body.progress_percent)).toEqual([]);
    });

    scenario('shows the running sampler and its steps live', async () => {
      const id = jobId('live');
      const { samples } = await run(samplerGraph({ steps: 12, stepMs: 120 }), id);
      const live = samples.filter((s) => s.status === 200 && s.body.status === 'running').flatMap((s) => s.body.nodes.filter((n: { status: string }) => n.status === 'running'));
      const sampler = live.filter((n: { class_type: string; progress: { steps: number; total: number } | null }) => n.class_type === 'PodscopeTqdmSampler' && n.progress && n.progress.steps > 0 && n.progress.steps < 12);
      expect(sampler.length).toBeGreaterThan(0);
    });

    scenario('gives the same running job in /debug/status and /debug/queue, and an as_of no older than what the queue holds', async () => {
      const id = jobId('agree');
      const posted = await worker.submit(samplerGraph({ steps: 10, stepMs: 100 }), id);
      const pairs: Array<{ status: Sample['body']; queue: Sample['body'] }> = [];
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [status, queue] = await Promise.all([pod.get('/debug/status'), pod.get('/debug/queue')]);
        pairs.push({ status: status.body, queue: queue.body });
        const w = await pod.get(`/debug/workflow?job_id=${id}`);
        if ((w.body.status === 'success' && w.body.prompt_id === posted.promptId) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      let compared = 0;
      for (const { status, queue } of pairs) {
        const running = status.current_job?.prompt_id ?? null;
        const queued = queue.running[0]?.prompt_id ?? null;
        // Two requests a few ms apart may straddle a change; a settled pair must agree.
        if (running === posted.promptId || queued === posted.promptId) compared++;
        const asOf = Date.parse(queue.as_of);
        const later = [...queue.running, ...queue.pending].filter((j) => Date.parse(j.started_at ?? j.first_seen_at) > asOf || Date.parse(j.first_seen_at) > asOf);
        expect(later).toEqual([]);
      }
      expect(compared).toBeGreaterThan(5);
      const both = pairs.filter((p) => p.status.current_job && p.queue.running[0]);
      const disagree = both.filter((p) => p.status.current_job.prompt_id !== p.queue.running[0].prompt_id || p.status.queue.running !== p.queue.running.length);
      expect(disagree).toHaveLength(0);
    });

    scenario('keeps times in order and leaves unknown node times null, never invented', async () => {
      const id = jobId('times');
      const { end } = await run(samplerGraph({ steps: 5, stepMs: 60, loadMs: 500 }), id);
      const w = end.body;
      const t = (v: string | null) => (v === null ? null : Date.parse(v));
      expect(t(w.queued_at ?? w.started_at)!).toBeLessThanOrEqual(t(w.started_at)!);
      expect(t(w.started_at)!).toBeLessThanOrEqual(t(w.finished_at)!);
      type Node = { node_id: string; class_type: string; started_at: string | null; duration_ms: number | null };
      const nodes = w.nodes as Node[];
      // Known times lie within the job's run (5 ms for clocks read apart); durations are never negative.
      const outside = nodes.filter((n) => n.started_at !== null && (t(n.started_at)! < t(w.started_at)! - 5 || t(n.started_at)! > t(w.finished_at)!));
      expect(outside).toEqual([]);
      expect(nodes.filter((n) => n.duration_ms !== null && n.duration_ms < 0)).toEqual([]);
      // A node that ran for a measurable time (the 500 ms loader) never shows 0 ms.
      expect(nodes.filter((n) => n.duration_ms === 0 && n.class_type === 'PodscopeSlowLoad')).toEqual([]);
      const loader = w.nodes.find((n: { class_type: string }) => n.class_type === 'PodscopeSlowLoad');
      fact(mode, 'node_times', loader.timing ?? 'unknown');
      fact(mode, 'queued_time', w.queued_at === null ? 'unknown' : 'known');
      fact(mode, 'node_vram', 'peak_vram_mb' in loader ? 'reported' : 'absent');
      if (mode === 'tap') {
        expect(loader.duration_ms).toBeGreaterThanOrEqual(450);
        expect(loader.timing).toBe('comfyui');
        expect(w.queued_at).not.toBeNull();
      } else {
        // A release that sends progress_state to every client lets podscope see the loader start
        // and end; on the others nothing shows when it started: unknown, not zero. podscope says which.
        const broadcast = progressStateOf() === 'broadcast';
        expect((await pod.get('/debug/status')).body.comfyui.visibility.node_progress.seen).toBe(broadcast);
        expect(loader.status).toBe('completed');
        expect({ timing: loader.timing, started: loader.started_at !== null, long: (loader.duration_ms ?? 0) >= 400 }).toEqual(broadcast ? { timing: 'observed', started: true, long: true } : { timing: null, started: false, long: false });
      }
    });

    scenario('reports a node that raises, with its exception and traceback', async () => {
      const id = jobId('error');
      const { end } = await run(failingGraph(), id, { name: 'error' });
      expect(end.body.status).toBe('error');
      expect(end.body.error.exception_type).toMatch(/RuntimeError/);
      expect(end.body.error.exception_message).toBe('podscope test node failed on purpose');
      expect(end.body.error.traceback.length).toBeGreaterThan(0);
      const node = end.body.nodes.find((n: { node_id: string }) => n.node_id === '2');
      expect(node.status).toBe('error');
      expect(end.body.nodes.find((n: { node_id: string }) => n.node_id === '3').status).toBe('skipped');
    });

    scenario('tells a /debug/events follower how a failing job went, in order, under its job id', async () => {
      const id = jobId('events');
      const stream = await openSse(`${pod.base}/debug/events?job_id=${id}`);
      try {
        await until(() => stream.comments.find((c) => c.startsWith('podscope events ')), 10_000);
        const { end } = await run(failingGraph(), id);
        const last = await stream.waitFor((f) => f.event === 'job_finished', 20_000);
        const types = stream.frames.map((f) => f.event);
        expect(types[0]).toBe('job_queued');
        expect(types.at(-1)).toBe('job_finished');
        expect(new Set(stream.frames.map((f) => f.json.job_id))).toEqual(new Set([id]));
        expect(last.json).toMatchObject({ status: 'error', prompt_id: end.body.prompt_id, error: { node_id: '2', exception_message: 'podscope test node failed on purpose' } });
        expect(stream.frames.find((f) => f.event === 'node_finished' && f.json.node_id === '2')?.json.status).toBe('error');
      } finally {
        stream.close();
      }
    });

    scenario('links a fully cached re-run to its own job id and marks its nodes cached', async () => {
      const graph = quickGraph();
      await run(graph, jobId('first'));
      const id = jobId('cached');
      const { end } = await run(graph, id, { name: 'cached' });
      expect(end.body.status).toBe('success');
      expect(end.body.job_id).toBe(id);
      expect(end.body.nodes.every((n: { status: string }) => n.status === 'cached')).toBe(true);
      const arts = await pod.get(`/debug/artifacts?job_id=${id}`);
      expect(arts.status).toBe(200);
      expect(arts.body.artifacts.every((a: { from_cache: boolean }) => a.from_cache)).toBe(true);
    });

    scenario('finds a 20 ms prompt by its job id', async () => {
      const id = jobId('quick');
      const { posted, samples, end } = await run(quickGraph(), id, { name: 'quick' });
      expect(end.body.status).toBe('success');
      const found = firstAfter(samples, posted.postedAt, (s) => s.status === 200);
      expect(found!.at - posted.postedAt).toBeLessThanOrEqual(FOUND_MS + 100);
      const arts = await pod.get(`/debug/artifacts?job_id=${id}`);
      expect(arts.body.artifacts).toHaveLength(1);
      expect(arts.body.artifacts[0].kind).toBe('image');
      await until(async () => (await pod.get(`/debug/artifacts?job_id=${id}`)).body.artifacts[0].exists === true || null, 10_000);
    });

    scenario('tells a rejected prompt apart, with the reason', async () => {
      const id = jobId('rejected');
      const posted = await worker.submit(invalidGraph(), id);
      expect(posted.status).toBe(400);
      const q = await until(async () => {
        const r = await pod.get('/debug/queue');
        return r.body.rejected.find((x: { at: string; reasons: string[] }) => Date.parse(x.at) >= posted.postedAt - 1000 && x.reasons.length > 0);
      }, 10_000);
      expect(q.reasons.join(' ')).toMatch(/PodscopeTqdmSampler 3: Value 0 smaller than min of 1: steps/);
      fact(mode, 'rejection_job_id', q.job_id === id ? 'job id' : 'no job id');
      if (mode === 'tap') {
        expect(q.job_id).toBe(id);
        const w = await pod.get(`/debug/workflow?job_id=${id}`);
        expect(w.status).toBe(200);
        expect(w.body.status).toBe('error');
        expect(w.body.error.exception_type).toBe('PromptRejected');
        expect(w.body.error.exception_message).toMatch(/steps/);
        // The harness's `podscope wait` ends at once with exit 1 and the reason.
        const started = Date.now();
        // podscope serves from this process: the CLI runs as an async child, never blocking it.
        const cli = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
          execFile(process.execPath, [BIN, 'wait', '--url', pod.base, '--job', id, '--timeout', '30'], (err, stdout) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
          );
        });
        expect(cli.code).toBe(1);
        expect(cli.stdout).toMatch(/rejected by ComfyUI[\s\S]*PodscopeTqdmSampler 3: Value 0 smaller than min of 1: steps/);
        expect(Date.now() - started).toBeLessThan(10_000);
      } else {
        // Without the tap the rejection has no job id: `podscope wait` cannot end early, but when it
        // times out it names the rejection it saw, with the reason.
        const cli = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
          execFile(process.execPath, [BIN, 'wait', '--url', pod.base, '--job', id, '--timeout', '3'], (err, stdout) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
          );
        });
        expect(cli.code).toBe(2);
        expect(cli.stdout).toMatch(/not yet seen\); meanwhile a prompt was rejected[\s\S]*job id unknown without the tap\): PodscopeTqdmSampler 3: Value 0 smaller than min of 1: steps/);
      }
    });

    scenario('marks the node an interrupt cut off as interrupted, and the nodes after it as skipped', async () => {
      const id = jobId('interrupt');
      const watcher = new Watcher(pod, `/debug/workflow?job_id=${id}`);
      const posted = await worker.submit(samplerGraph({ steps: 60, stepMs: 100, loadMs: 100 }), id);
      await until(() => worker.frames.find((f) => f.type === 'progress' && f.data.prompt_id === posted.promptId && (f.data.value as number) >= 3), 30_000, 10);
      await fetch(`${comfy.url}/interrupt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      const end = await until(async () => {
        const r = await pod.get(`/debug/workflow?job_id=${id}`);
        return r.body.status === 'interrupted' ? r : null;
      }, 30_000);
      await watcher.stop();
      saveRecording(`${mode}-interrupt`, pod.raw, posted.postedAt - 50);
      const byId = (nid: string) => end.body.nodes.find((n: { node_id: string }) => n.node_id === nid);
      expect(byId('3').status).toBe('interrupted');
      expect(byId('3').progress.steps).toBeGreaterThanOrEqual(3);
      expect(byId('4').status).toBe('skipped');
      expect(end.body.error.exception_type).toBe('Interrupted');
    });

    scenario('shows a second prompt pending behind the first, with its job id, and runs both', async () => {
      const a = jobId('first-of-two');
      const b = jobId('second-of-two');
      const pa = await worker.submit(samplerGraph({ steps: 10, stepMs: 100 }), a);
      const pb = await worker.submit(samplerGraph({ steps: 3, stepMs: 50 }), b);
      const q = await until(async () => {
        const r = await pod.get('/debug/queue');
        return r.body.pending.find((p: { prompt_id: string }) => p.prompt_id === pb.promptId) ? r : null;
      }, 5000);
      expect(q.body.running.map((r: { job_id: string }) => r.job_id)).toEqual([a]);
      expect(q.body.pending[0]).toMatchObject({ job_id: b, position: 1 });
      for (const [id, p] of [[a, pa], [b, pb]] as const) {
        const w = await until(async () => {
          const r = await pod.get(`/debug/workflow?job_id=${id}`);
          return r.body.status === 'success' ? r : null;
        }, 30_000);
        expect(w.body.prompt_id).toBe(p.promptId);
      }
    });

    scenario('answers for the new prompt as soon as a job id is retried, with only its own outputs', async () => {
      const id = jobId('retried');
      const first = await run(samplerGraph({ steps: 2, stepMs: 20 }), id);
      const watcher = new Watcher(pod, `/debug/workflow?job_id=${id}`);
      const second = await worker.submit(samplerGraph({ steps: 6, stepMs: 100 }), id);
      await until(async () => {
        const r = await pod.get(`/debug/workflow?job_id=${id}`);
        return r.body.prompt_id === second.promptId && r.body.status === 'success' ? r : null;
      }, 30_000);
      const samples = await watcher.stop();
      const switched = firstAfter(samples, second.postedAt, (s) => s.body.prompt_id === second.promptId);
      expect(switched!.at - second.postedAt).toBeLessThanOrEqual(FOUND_MS + 100);
      // After it switched, never the old prompt's answer again.
      for (const s of samples.filter((x) => x.at >= switched!.at)) expect(s.body.prompt_id).toBe(second.promptId);
      expect(switched!.body.retry_of).toBe(first.promptId);
      const arts = await pod.get(`/debug/artifacts?job_id=${id}`);
      expect(arts.body.artifacts.map((a: { prompt_id: string }) => a.prompt_id)).toEqual([second.promptId]);
    });

    scenario('follows a prompt that has no client_id', async () => {
      const id = jobId('no-client');
      const { end, samples } = await run(samplerGraph({ steps: 10, stepMs: 100 }), id, { client: false, name: 'no-client' });
      expect(end.body.status).toBe('success');
      const values = samples.filter((s) => s.status === 200 && s.body.status === 'running').map((s) => s.body.progress_percent).filter((p): p is number => p !== null);
      expect(Math.max(...values)).toBeLessThan(95);
      expect(new Set(values.filter((v) => v > 5)).size).toBeGreaterThanOrEqual(3);
    });

    scenario('finds a PreviewImage output in ComfyUI\u2019s temp directory and serves it', async () => {
      const id = jobId('preview');
      const { end } = await run(samplerGraph({ steps: 1, stepMs: 10, loadMs: 10, output: 'PreviewImage' }), id, { name: 'preview' });
      expect(end.body.status).toBe('success');
      const art = await until(async () => {
        const r = await pod.get(`/debug/artifacts?job_id=${id}`);
        return r.body.artifacts[0]?.exists === true ? r.body.artifacts[0] : null;
      }, 10_000);
      expect(art.type).toBe('temp');
      const file = await fetch(`${pod.base}${art.url}`);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe('image/png');
      expect((await file.arrayBuffer()).byteLength).toBeGreaterThan(50);
    });

    /** The `Prompt executed in …` lines /debug/logs charges to a job, once its outcome is in. */
    async function endLines(id: string): Promise<string[]> {
      await until(async () => ['success', 'error'].includes((await pod.get(`/debug/workflow?job_id=${id}`)).body.status) || null, 60_000);
      // The line may follow the outcome by a moment (the file and the socket deliver it).
      let lines: string[] = [];
      await until(async () => {
        lines = (await pod.get(`/debug/logs?job_id=${id}&source=comfyui&q=Prompt%20executed&lines=50`)).body.lines.map((l: { message: string }) => l.message);
        return lines.length > 0 || null;
      }, 20_000).catch(() => undefined);
      return lines;
    }

    scenario('charges a prompt and its cached twin, posted together, each its own `Prompt executed in` line', async () => {
      const graph = samplerGraph({ steps: 6, stepMs: 100, color: fresh() });
      const [first, twin] = [jobId('first'), jobId('twin')];
      await worker.submit(graph, first);
      await worker.submit(graph, twin);
      const [a, b] = [await endLines(first), await endLines(twin)];
      expect(a).toHaveLength(1);
      expect(b).toHaveLength(1);
      // With the tap, each its own `got prompt` too (printed at its POST); without it, nothing says
      // which prompt a `got prompt` announced, and no job is given one.
      for (const id of [first, twin]) {
        const got = async () => (await pod.get(`/debug/logs?job_id=${id}&source=comfyui&q=got%20prompt`)).body.lines;
        const lines = mode === 'tap' ? await until(async () => ((await got()).length > 0 ? got() : null), 20_000) : await got();
        expect(lines, id).toHaveLength(mode === 'tap' ? 1 : 0);
      }
      // The first ran its sampler (0.6 s and more); the twin was all cached.
      expect(Number(/in ([\d.]+) seconds/.exec(a[0]!)![1])).toBeGreaterThan(0.3);
      expect(Number(/in ([\d.]+) seconds/.exec(b[0]!)![1])).toBeLessThan(0.3);
    });

    scenario('charges three quick prompts in a row each its own `Prompt executed in` line', async () => {
      const ids = [jobId('quick1'), jobId('quick2'), jobId('quick3')];
      for (const id of ids) await worker.submit(quickGraph(), id);
      for (const id of ids) expect(await endLines(id), id).toHaveLength(1);
    });

    scenario('charges two prompts POSTed in the same millisecond each its own `Prompt executed in` line', async () => {
      const ids = [jobId('same-ms-1'), jobId('same-ms-2')];
      await Promise.all(ids.map((id) => worker.submit(quickGraph(), id)));
      for (const id of ids) expect(await endLines(id), id).toHaveLength(1);
    });

    scenario('keeps each log line once, from the file and the websocket, at ComfyUI\u2019s time', async () => {
      const marker = `podscope-marker-${randomUUID()}`;
      const id = jobId('marker');
      const { posted, end } = await run(markerGraph(marker), id);
      const logs = await until(async () => {
        const r = await pod.get(`/debug/logs?q=${marker}&lines=100`);
        return r.body.lines.length > 0 ? r : null;
      }, 10_000);
      // Both origins (the log file and the websocket) have delivered the marker's line before it is counted.
      await bothOriginsDelivered(marker);
      const again = await pod.get(`/debug/logs?q=${marker}&lines=100`);
      expect(again.body.lines).toHaveLength(1);
      const line = logs.body.lines[0];
      expect(line.job_id).toBe(id);
      expect(Date.parse(line.ts)).toBeGreaterThanOrEqual(posted.postedAt - 50);
      expect(Date.parse(line.ts)).toBeLessThanOrEqual(Date.parse(end.body.finished_at) + 50);
    });

    scenario('declares a job of a ComfyUI that died and stayed down lost within 30 s, and says why', async () => {
      const id = jobId('killed');
      const posted = await worker.submit(samplerGraph({ steps: 200, stepMs: 100, loadMs: 50 }), id);
      await until(async () => (await pod.get(`/debug/workflow?job_id=${id}`)).body.status === 'running' || null, 10_000);
      await until(() => worker.frames.find((f) => f.type === 'progress' && f.data.prompt_id === posted.promptId), 20_000, 10);
      await comfy.kill();
      const killedAt = Date.now();
      const lost = await until(async () => {
        const r = await pod.get(`/debug/workflow?job_id=${id}`);
        return r.body.status === 'lost' ? r : null;
      }, 40_000, 100);
      expect(lost.at - killedAt).toBeLessThanOrEqual(30_000);
      expect(lost.body.lost_reason).toMatch(/ComfyUI stopped/);
      expect(lost.body.error.exception_type).toBe('ProbableSystemRamOom');
      expect(lost.body.nodes.find((n: { node_id: string }) => n.node_id === '3').status).toBe('interrupted');
      worker.close();
      await comfy.start();
      worker = await new Submitter(comfy.url).connect();
      await until(async () => (await pod.get('/ready')).status === 200 || null, 30_000);
    }, 120_000);

    scenario('after a restart under a job, charges none of the new ComfyUI\u2019s lines to it and still diagnoses it', async () => {
      const id = jobId('restarted');
      const posted = await worker.submit(samplerGraph({ steps: 200, stepMs: 100, loadMs: 50 }), id);
      await until(() => worker.frames.find((f) => f.type === 'progress' && f.data.prompt_id === posted.promptId), 20_000, 10);
      await until(async () => (await pod.get(`/debug/workflow?job_id=${id}`)).body.status === 'running' || null, 10_000);
      worker.close();
      await comfy.kill();
      const restartAt = Date.now();
      await comfy.start();
      worker = await new Submitter(comfy.url).connect();
      const lost = await until(async () => {
        const r = await pod.get(`/debug/workflow?job_id=${id}`);
        return r.body.status === 'lost' ? r : null;
      }, 30_000, 100);
      expect(lost.body.lost_reason).toMatch(/restarted|stopped/);
      expect(lost.body.error.exception_type).toBe('ProbableSystemRamOom');
      await until(async () => (await pod.get('/ready')).status === 200 || null, 30_000);
      // The new ComfyUI's start-up lines have come by both origins (the file, and the websocket's backlog) before anything is counted.
      await bothOriginsDelivered('To see the GUI', restartAt);
      const charged = await pod.get(`/debug/logs?job_id=${id}&lines=1000&source=comfyui`);
      const late = charged.body.lines.filter((l: { ts: string }) => Date.parse(l.ts) >= restartAt);
      expect(late.map((l: { message: string }) => l.message)).toEqual([]);
      // The start-up lines are kept once each (file and replayed websocket backlog).
      const gui = await pod.get('/debug/logs?q=To%20see%20the%20GUI&lines=100');
      const since = gui.body.lines.filter((l: { ts: string }) => Date.parse(l.ts) >= restartAt);
      expect(since).toHaveLength(1);
      // And the new ComfyUI runs jobs that podscope follows.
      const after = await run(quickGraph(), jobId('after-restart'));
      expect(after.end.body.status).toBe('success');
    }, 120_000);
  });
}
