/**
 * One podscope following two ComfyUIs (simulated, each pinned to its GPU with --cuda-device) on a
 * pod whose two GPUs the fake nvidia-smi reports: every answer says which instance, `?instance=`
 * filters, each instance is ready or not on its own, and a job's GPU use counts its instance's GPU.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimComfyUI, submit, txt2img } from '../../src/sim/comfyui.js';
import { startPodscope, type Podscope } from '../../src/main.js';
import { jsonGetter, until } from '../helpers/comfy-rig.js';
import { FakeSmi } from '../helpers/fake-smi.js';
import { openSse } from '../helpers/sse.js';
import { freePortRange } from '../helpers/ports.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface TwoRig {
  sims: [SimComfyUI, SimComfyUI];
  pod: Podscope;
  base: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get(path: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

let rig: TwoRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

async function startTwo(env: Record<string, string> = {}): Promise<TwoRig> {
  const sims: [SimComfyUI, SimComfyUI] = [new SimComfyUI({ stepMs: 40, cudaDevice: 0 }), new SimComfyUI({ stepMs: 40, cudaDevice: 1 })];
  await Promise.all(sims.map((s) => s.start()));
  const fake = new FakeSmi({ fixture: 'h100-80gb-hbm3-x1.drv590.load', gpus: 2, utilization: 100 });
  process.env.FAKE_NVIDIA_SMI = fake.file;
  const pod = await startPodscope({
    env: {
      PODSCOPE_PORT: '0',
      PODSCOPE_HOST: '127.0.0.1',
      COMFYUI_URLS: `gpu0=${sims[0].url},gpu1=${sims[1].url}`,
      PODSCOPE_NVIDIA_SMI: fake.bin,
      PODSCOPE_GPU_BACKEND: 'nvidia-smi',
      PODSCOPE_GPU_INTERVAL_MS: '200',
      PODSCOPE_COMFYUI_POLL_MS: '500',
      PODSCOPE_WS_PING_MS: '1000',
      PODSCOPE_COMFYUI_GONE_S: '1',
      LOG_LEVEL: 'silent',
      ...env,
    },
    sinks: [],
  });
  const base = `http://127.0.0.1:${pod.port}`;
  return {
    sims,
    pod,
    base,
    get: jsonGetter(base),
    async close() {
      await pod.close();
      await Promise.all(sims.map((s) => s.stop()));
    },
  };
}

const ready = (r: TwoRig) => until(async () => (await r.get('/ready')).status === 200, 20_000);
const finished = (r: TwoRig, id: string, status = 'success', ms = 20_000) =>
  until(async () => {
    const w = await r.get(`/debug/workflow?job_id=${id}`);
    return w.body.status === status ? w.body : undefined;
  }, ms);

describe('a pod with two ComfyUIs', () => {
  it('finds a job by its id on whichever instance ran it, and says which', async () => {
    rig = await startTwo();
    await ready(rig);
    await submit(rig.sims[0].url, txt2img({ steps: 2, seed: 1 }), { clientId: 'w0', extra: { job_id: 'on-gpu0' } });
    await submit(rig.sims[1].url, txt2img({ steps: 2, seed: 2 }), { clientId: 'w1', extra: { job_id: 'on-gpu1' } });
    expect((await finished(rig, 'on-gpu0')).instance).toBe('gpu0');
    expect((await finished(rig, 'on-gpu1')).instance).toBe('gpu1');
    const jobs = (await rig.get('/debug/jobs')).body.jobs;
    expect(jobs.map((j: { job_id: string; instance: string }) => `${j.instance}:${j.job_id}`).sort()).toEqual(['gpu0:on-gpu0', 'gpu1:on-gpu1']);
  });

  it('filters jobs, queue, logs, artifacts and the latest workflow by ?instance=', async () => {
    rig = await startTwo();
    await ready(rig);
    await submit(rig.sims[0].url, txt2img({ steps: 2, seed: 3 }), { clientId: 'w0', extra: { job_id: 'a0' } });
    await submit(rig.sims[1].url, txt2img({ steps: 2, seed: 4 }), { clientId: 'w1', extra: { job_id: 'a1' } });
    await finished(rig, 'a0');
    await finished(rig, 'a1');
    expect((await rig.get('/debug/jobs?instance=gpu1')).body.jobs.map((j: { job_id: string }) => j.job_id)).toEqual(['a1']);
    expect((await rig.get('/debug/workflow?instance=gpu0')).body.job_id).toBe('a0');
    expect((await rig.get('/debug/queue?instance=gpu0')).status).toBe(200);
    const artifacts = (await rig.get('/debug/artifacts?instance=gpu1')).body.artifacts;
    expect(artifacts.length).toBeGreaterThan(0);
    expect(artifacts.every((a: { instance: string; job_id: string; url: string }) => a.instance === 'gpu1' && a.job_id === 'a1' && a.url.includes('instance=gpu1'))).toBe(true);
    const lines = await until(async () => {
      const l = (await rig!.get('/debug/logs?instance=gpu0&source=comfyui&lines=1000')).body.lines;
      return l.some((x: { job_id: string | null }) => x.job_id === 'a0') ? l : undefined;
    });
    expect(lines.every((l: { instance: string }) => l.instance === 'gpu0')).toBe(true);
    expect(lines.some((l: { job_id: string | null }) => l.job_id === 'a1')).toBe(false);
  });

  it('answers an unknown instance name with a 400 that lists the names there are', async () => {
    rig = await startTwo();
    for (const path of ['/debug/jobs', '/debug/queue', '/debug/logs', '/debug/artifacts', '/debug/workflow', '/ready']) {
      const res = await rig.get(`${path}?instance=gpu9`);
      expect(res.status, path).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'INVALID_PARAMETER', details: { parameter: 'instance', instances: ['gpu0', 'gpu1'] } });
    }
  });

  it('streams only the named instance’s events with /debug/events?instance=', async () => {
    rig = await startTwo();
    await ready(rig);
    const stream = await openSse(`${rig.base}/debug/events?instance=gpu1&types=job_finished`);
    try {
      await submit(rig.sims[0].url, txt2img({ steps: 2, seed: 5 }), { clientId: 'w0', extra: { job_id: 'e0' } });
      await finished(rig, 'e0');
      await submit(rig.sims[1].url, txt2img({ steps: 2, seed: 6 }), { clientId: 'w1', extra: { job_id: 'e1' } });
      const frame = await stream.waitFor((f) => f.event === 'job_finished', 20_000);
      expect(frame.json).toMatchObject({ instance: 'gpu1', job_id: 'e1', status: 'success' });
      expect(stream.frames.some((f) => f.json?.job_id === 'e0')).toBe(false);
    } finally {
      stream.close();
    }
  });

  it('shows both running jobs as current, each with its instance, and each instance with its GPU', async () => {
    rig = await startTwo();
    await ready(rig);
    await submit(rig.sims[0].url, txt2img({ steps: 40, seed: 7 }), { clientId: 'w0', extra: { job_id: 'long0' } });
    await submit(rig.sims[1].url, txt2img({ steps: 40, seed: 8 }), { clientId: 'w1', extra: { job_id: 'long1' } });
    const status = await until(async () => {
      const s = (await rig!.get('/debug/status')).body;
      return s.current_jobs.length === 2 ? s : undefined;
    }, 20_000);
    expect(status.status).toBe('processing');
    expect(status.current_jobs.map((j: { instance: string; job_id: string }) => `${j.instance}:${j.job_id}`).sort()).toEqual(['gpu0:long0', 'gpu1:long1']);
    expect(status.current_job).toEqual(status.current_jobs[0]);
    expect(status.instances.map((i: { name: string; status: string; current_job: { job_id: string } }) => [i.name, i.status, i.current_job.job_id])).toEqual([
      ['gpu0', 'processing', 'long0'],
      ['gpu1', 'processing', 'long1'],
    ]);
    const gpus = await until(async () => {
      const s = (await rig!.get('/debug/status')).body;
      return s.instances.every((i: { gpus: unknown[] | null }) => i.gpus?.[0] && (i.gpus[0] as { uuid: string | null }).uuid) ? s.instances : undefined;
    });
    expect(gpus.map((i: { gpus: Array<{ index: number }>; gpus_source: string }) => [i.gpus.map((g) => g.index), i.gpus_source])).toEqual([
      [[0], 'argv'],
      [[1], 'argv'],
    ]);
    expect(status.comfyui.url).toBe(rig.sims[0].url);
    expect(status.queue.running).toBe(2);
  });

  it("counts a job's GPU-seconds on its instance's one GPU, not on both of the pod's", async () => {
    rig = await startTwo();
    await ready(rig);
    // GPU samples first, so the run is covered by the timeline.
    await until(async () => (await rig!.get('/debug/status')).body.gpus.length === 2);
    await submit(rig.sims[1].url, txt2img({ steps: 15, seed: 9 }), { clientId: 'w1', extra: { job_id: 'g1' } });
    const job = await finished(rig, 'g1');
    const seconds = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
    expect(job.gpu_seconds).toBeCloseTo(seconds * 1, 1);
  });

  it('says which instance is not ready: /ready 503 naming it, ?instance= right for each, its job lost and the other unharmed', async () => {
    rig = await startTwo();
    await ready(rig);
    await submit(rig.sims[0].url, txt2img({ steps: 30, seed: 10 }), { clientId: 'w0', extra: { job_id: 'dies' } });
    await submit(rig.sims[1].url, txt2img({ steps: 30, seed: 11 }), { clientId: 'w1', extra: { job_id: 'lives' } });
    await until(async () => (await rig!.get('/debug/workflow?job_id=dies')).body.status === 'running', 20_000);
    await rig.sims[0].stop();
    const lost = await finished(rig, 'dies', 'lost');
    expect(lost.instance).toBe('gpu0');
    const readyAll = await until(async () => {
      const r = await rig!.get('/ready');
      return r.status === 503 ? r.body : undefined;
    });
    expect(readyAll.checks.comfyui).toMatch(/^gpu0: ComfyUI at /);
    expect((await rig.get('/ready?instance=gpu0')).status).toBe(503);
    expect((await rig.get('/ready?instance=gpu1')).status).toBe(200);
    expect((await finished(rig, 'lives')).instance).toBe('gpu1');
    const problems = (await rig.get('/debug/status')).body.problems;
    expect(problems.some((p: { instance?: string; code: string }) => p.instance === 'gpu0' && p.code === 'COMFYUI_UNREACHABLE')).toBe(true);
    expect(problems.some((p: { instance?: string }) => p.instance === 'gpu1')).toBe(false);
  });

  it('follows one instance at its usual pace while the other hangs every HTTP call', async () => {
    rig = await startTwo({ PODSCOPE_COMFYUI_TIMEOUT_MS: '20000' });
    await ready(rig);
    rig.sims[0].httpFault = { paths: /./, status: 'hang' };
    await submit(rig.sims[1].url, txt2img({ steps: 2, seed: 13 }), { clientId: 'w1', extra: { job_id: 'h1' } });
    // Done and found well inside the hung instance's 20 s deadline.
    expect((await finished(rig, 'h1', 'success', 15_000)).instance).toBe('gpu1');
    rig.sims[0].httpFault = null;
  });

  it('labels the per-instance metric families comfyui="NAME"', async () => {
    rig = await startTwo();
    await ready(rig);
    await submit(rig.sims[1].url, txt2img({ steps: 2, seed: 12 }), { clientId: 'w1', extra: { job_id: 'm1' } });
    await finished(rig, 'm1');
    const text = await (await fetch(`${rig.base}/metrics`)).text();
    expect(text).toContain('podscope_comfyui_up{comfyui="gpu0"} 1');
    expect(text).toContain('podscope_comfyui_up{comfyui="gpu1"} 1');
    expect(text).toContain('podscope_jobs_finished_total{comfyui="gpu1",status="success"} 1');
    expect(text).toContain('podscope_jobs_finished_total{comfyui="gpu0",status="success"} 0');
    expect(text).toMatch(/podscope_queue_jobs\{comfyui="gpu0",state="pending"\} 0/);
    expect(text).not.toMatch(/\binstance="/);
  });
});

describe('discovery (PODSCOPE_COMFYUI_DISCOVER)', () => {
  let sims: SimComfyUI[] = [];
  let pod: Podscope | null = null;
  afterEach(async () => {
    await pod?.close();
    await Promise.all(sims.map((s) => s.stop()));
    sims = [];
    pod = null;
  });

  it('follows every ComfyUI that answers on the ports, one that starts later too, and reports one that goes away down without forgetting it', async () => {
    const base = await freePortRange(4);
    sims = [new SimComfyUI({ port: base, stepMs: 20 }), new SimComfyUI({ port: base + 2, stepMs: 20 })];
    await Promise.all(sims.map((s) => s.start()));
    // Something else on a probed port that is not ComfyUI is left alone.
    const other = (await import('node:http')).createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    await new Promise<void>((r) => other.listen(base + 1, '127.0.0.1', r));
    try {
      pod = await startPodscope({
        env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', PODSCOPE_GPU: 'off', PODSCOPE_COMFYUI_DISCOVER: `${base}-${base + 3}`, PODSCOPE_COMFYUI_DISCOVER_S: '1', PODSCOPE_COMFYUI_POLL_MS: '300', PODSCOPE_WS_PING_MS: '500', PODSCOPE_COMFYUI_GONE_S: '1', LOG_LEVEL: 'silent' },
        sinks: [],
      });
      const get = jsonGetter(`http://127.0.0.1:${pod.port}`);
      const names = async () => ((await get('/debug/status')).body.instances as Array<{ name: string }>).map((i) => i.name);
      await until(async () => (await names()).length === 2, 20_000);
      expect(await names()).toEqual([String(base), String(base + 2)]);
      await until(async () => (await get('/ready')).status === 200, 20_000);

      // A ComfyUI that starts later is found at the next probe.
      const late = new SimComfyUI({ port: base + 3, stepMs: 20 });
      sims.push(late);
      await late.start();
      await until(async () => (await names()).includes(String(base + 3)), 20_000);
      await submit(late.url, txt2img({ steps: 2, seed: 21 }), { clientId: 'w', extra: { job_id: 'late-job' } });
      const job = await until(async () => {
        const w = await get('/debug/workflow?job_id=late-job');
        return w.body.status === 'success' ? w.body : undefined;
      }, 20_000);
      expect(job.instance).toBe(String(base + 3));

      // One that goes away stays listed, down, and /ready names it.
      await sims[1]!.stop();
      const ready = await until(async () => {
        const r = await get('/ready');
        return r.status === 503 ? r.body : undefined;
      }, 20_000);
      expect(ready.checks.comfyui).toMatch(new RegExp(`^${base + 2}: `));
      expect(await names()).toEqual([String(base), String(base + 2), String(base + 3)]);
      expect((await get(`/ready?instance=${base + 3}`)).status).toBe(200);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });
});

describe("an instance's GPUs from its process's environment", () => {
  it('are the ones CUDA_VISIBLE_DEVICES names in the environment of the process listening on its port', async () => {
    // A ComfyUI started with CUDA_VISIBLE_DEVICES=1 and no --cuda-device: a process of its own.
    const sim = spawn(process.execPath, [fileURLToPath(new URL('../../dist/sim/run-comfyui.js', import.meta.url)), '20'], {
      env: { PATH: process.env.PATH ?? '', CUDA_VISIBLE_DEVICES: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    sim.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const fake = new FakeSmi({ fixture: 'h100-80gb-hbm3-x1.drv590.load', gpus: 2 });
    process.env.FAKE_NVIDIA_SMI = fake.file;
    let pod: Podscope | null = null;
    try {
      const url = await until(() => /SIM_URL=(\S+)/.exec(out)?.[1]);
      pod = await startPodscope({
        env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URLS: `a=${url},b=http://127.0.0.1:9`, PODSCOPE_NVIDIA_SMI: fake.bin, PODSCOPE_GPU_BACKEND: 'nvidia-smi', PODSCOPE_GPU_INTERVAL_MS: '200', PODSCOPE_COMFYUI_POLL_MS: '300', LOG_LEVEL: 'silent' },
        sinks: [],
      });
      const get = jsonGetter(`http://127.0.0.1:${pod.port}`);
      const row = await until(async () => {
        const a = (await get('/debug/status')).body.instances[0];
        return a.gpus?.[0]?.uuid ? a : undefined;
      }, 20_000);
      expect(row.gpus.map((g: { index: number }) => g.index)).toEqual([1]);
      expect(row.gpus_source).toBe('cuda_visible_devices');
    } finally {
      await pod?.close();
      sim.kill('SIGKILL');
    }
  });
});
