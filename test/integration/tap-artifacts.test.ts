import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { startRig, SubmitterClient, until, type Rig } from '../helpers/comfy-rig.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

function dirs() {
  const root = mkdtempSync(join(tmpdir(), 'podscope-comfy-'));
  return { root, output: join(root, 'output'), temp: join(root, 'temp') };
}

const wf = (r: Rig, id: string) => r.get(`/debug/workflow?job_id=${encodeURIComponent(id)}`);

describe('with the tap node', () => {
  it("shows another client's nodes going pending → running (with steps) → completed, live", async () => {
    rig = await startRig({ tap: true, stepMs: 60, nodeMs: 100 }); // slow loaders: the sampler waits, pending, long enough to be seen
    await until(async () => (await rig!.get('/ready')).status === 200);
    await until(async () => (await rig!.get('/debug/status')).body.comfyui.tap === true);
    const worker = await new SubmitterClient(rig.sim.url, 'worker-tapped').connect();
    await submit(rig.sim.url, txt2img({ steps: 12, seed: 3 }), { clientId: worker.clientId, extra: { job_id: 'tapped' } });
    const seen = new Map<string, Set<string>>();
    let sawSteps = false;
    await until(async () => {
      const r = await wf(rig!, 'tapped');
      if (r.status !== 200) return false;
      for (const n of r.body.nodes) {
        if (!seen.has(n.node_id)) seen.set(n.node_id, new Set());
        seen.get(n.node_id)!.add(n.status);
        if (n.class_type === 'KSampler' && n.status === 'running' && n.progress?.steps > 0 && n.progress.steps < 12) sawSteps = true;
      }
      return r.body.status === 'success';
    }, 8000, 10);
    expect(seen.get('3')).toEqual(new Set(['pending', 'running', 'completed']));
    expect(seen.get('9')!.has('completed')).toBe(true);
    expect(sawSteps).toBe(true);
    const done = (await wf(rig, 'tapped')).body;
    expect(done.sources).toContain('frames');
    expect(done.nodes_completed).toBe(done.nodes_total);
    worker.close();
  });
});

describe('artifacts', () => {
  it('lists a job\'s outputs of every kind with sizes, and downloads them', async () => {
    const d = dirs();
    rig = await startRig({ outputDir: d.output, tempDir: d.temp }, { COMFYUI_OUTPUT_DIR: d.output });
    await until(async () => (await rig!.get('/ready')).status === 200);
    const graph = {
      ...txt2img({ steps: 2, seed: 21, prefix: 'runs/job42' }),
      '10': { class_type: 'PreviewImage', inputs: { images: ['8', 0] } },
      '11': { class_type: 'VHS_VideoCombine', inputs: { images: ['8', 0], filename_prefix: 'AnimateDiff' } },
      '12': { class_type: 'SaveAudio', inputs: { audio: ['8', 0], filename_prefix: 'audio/ComfyUI' } },
      '13': { class_type: 'SaveAnimatedWEBP', inputs: { images: ['8', 0], filename_prefix: 'anim' } },
    };
    await submit(rig.sim.url, graph, { clientId: 'w', extra: { job_id: 'kinds' } });
    const a = await until(async () => {
      const r = await rig!.get('/debug/artifacts?job_id=kinds');
      return r.status === 200 && r.body.artifacts.length === 5 && r.body.artifacts.every((x: { exists: boolean | null }) => x.exists !== null) ? r.body : undefined;
    });
    const byKind = Object.fromEntries(a.artifacts.map((x: { kind: string }) => [x.kind, x]));
    expect(Object.keys(byKind).sort()).toEqual(['animated', 'audio', 'image', 'video']);
    const images = a.artifacts.filter((x: { kind: string }) => x.kind === 'image');
    expect(images.map((x: { type: string }) => x.type).sort()).toEqual(['output', 'temp']);
    const saved = images.find((x: { type: string }) => x.type === 'output');
    expect(saved).toMatchObject({ subfolder: 'runs', node_id: '9', exists: true, from_cache: false });
    expect(saved.size_bytes).toBeGreaterThan(0);
    expect(byKind.video).toMatchObject({ format: 'video/h264-mp4' });
    for (const x of a.artifacts) {
      const res = await fetch(`${rig.base}${x.url}`);
      expect(res.status, x.url).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(x.size_bytes);
    }
    const png = await fetch(`${rig.base}${saved.url}`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(png.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('marks a cached replay as produced by the earlier job', async () => {
    const d = dirs();
    rig = await startRig({ outputDir: d.output, tempDir: d.temp }, { COMFYUI_OUTPUT_DIR: d.output });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 5 }), { clientId: 'w', extra: { job_id: 'orig' } });
    await until(async () => (await wf(rig!, 'orig')).body.status === 'success');
    await until(async () => (await rig!.get('/debug/artifacts?job_id=orig')).body.artifacts?.length === 1);
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 5 }), { clientId: 'w', extra: { job_id: 'replay' } });
    const r = await until(async () => {
      const x = await rig!.get('/debug/artifacts?job_id=replay');
      return x.status === 200 && x.body.artifacts.length === 1 ? x.body.artifacts[0] : undefined;
    });
    expect(r).toMatchObject({ from_cache: true, produced_by_job: 'orig' });
  });

  it('reports a file that is gone as missing', async () => {
    const d = dirs();
    rig = await startRig({ outputDir: d.output, tempDir: d.temp }, { COMFYUI_OUTPUT_DIR: d.output });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 6 }), { clientId: 'w', extra: { job_id: 'gone' } });
    const art = await until(async () => {
      const x = await rig!.get('/debug/artifacts?job_id=gone');
      return x.body.artifacts?.[0]?.exists === true ? x.body.artifacts[0] : undefined;
    });
    rmSync(join(d.output, art.filename));
    const res = await fetch(`${rig.base}${art.url}`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('marks temp outputs as wiped when ComfyUI restarts', async () => {
    const d = dirs();
    rig = await startRig({ outputDir: d.output, tempDir: d.temp }, { COMFYUI_OUTPUT_DIR: d.output, PODSCOPE_COMFYUI_POLL_MS: '200' });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 31, output: 'PreviewImage' }), { clientId: 'w', extra: { job_id: 'preview' } });
    const before = await until(async () => {
      const x = await rig!.get('/debug/artifacts?job_id=preview');
      return x.body.artifacts?.[0]?.exists === true ? x.body.artifacts[0] : undefined;
    });
    expect(before).toMatchObject({ type: 'temp', wiped: false });
    await rig.sim.restart(800);
    const after = await until(async () => {
      const x = await rig!.get('/debug/artifacts?job_id=preview');
      return x.body.artifacts[0].wiped ? x.body.artifacts[0] : undefined;
    }, 8000);
    expect(after).toMatchObject({ wiped: true, exists: false });
  });

  it('answers 404 JOB_NOT_FOUND for an unknown job', async () => {
    rig = await startRig();
    const r = await rig.get('/debug/artifacts?job_id=nope');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('JOB_NOT_FOUND');
  });

  it('proxies ComfyUI /view when the output directory is not configured', async () => {
    const d = dirs();
    rig = await startRig({ outputDir: d.output, tempDir: d.temp });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 8 }), { clientId: 'w', extra: { job_id: 'proxied' } });
    // Existence and size come from a HEAD request to ComfyUI's /view.
    const art = await until(async () => {
      const a = (await rig!.get('/debug/artifacts?job_id=proxied')).body.artifacts?.[0];
      return a?.exists === true ? a : undefined;
    });
    expect(art.size_bytes).toBeGreaterThan(0);
    const res = await fetch(`${rig.base}${art.url}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('simulated png');
  });
});

describe('the download route refuses every way out of the output directory', () => {
  const d = dirs();
  mkdirSync(d.output, { recursive: true });
  mkdirSync(join(d.output, 'sub'), { recursive: true });
  writeFileSync(join(d.output, 'ok.png'), 'png');
  writeFileSync(join(d.root, 'secret.txt'), 'TOP SECRET');
  symlinkSync(join(d.root, 'secret.txt'), join(d.output, 'link.png'));
  symlinkSync(d.root, join(d.output, 'sub', 'up'));

  const cases: Array<[string, string, number]> = [
    ['parent segment in filename', 'filename=..%2Fsecret.txt', 400],
    ['parent segment in subfolder', 'filename=secret.txt&subfolder=..', 400],
    ['nested parent segments', 'filename=secret.txt&subfolder=sub%2F..%2F..', 400],
    ['encoded dots', 'filename=%2e%2e%2fsecret.txt', 400],
    ['double-encoded dots', 'filename=%252e%252e%252fsecret.txt', 404],
    ['absolute filename', 'filename=%2Fetc%2Fpasswd', 400],
    ['absolute subfolder', 'filename=passwd&subfolder=%2Fetc', 400],
    ['NUL byte', 'filename=ok.png%00.txt', 400],
    ['backslash', 'filename=..%5Csecret.txt', 400],
    ['windows drive', 'filename=x&subfolder=C:%5Cwindows', 400],
    ['symlink to a file outside', 'filename=link.png', 404],
    ['symlinked directory leading outside', 'filename=secret.txt&subfolder=sub%2Fup', 404],
    ['unknown type', 'filename=ok.png&type=input', 400],
    ['missing filename', 'subfolder=sub', 400],
  ];

  /** GET /debug/artifacts/file with `query` on a rig whose output directory is the one above. */
  async function download(query: string) {
    rig ??= await startRig({}, { COMFYUI_OUTPUT_DIR: d.output });
    const res = await fetch(`${rig.base}/debug/artifacts/file?${query}`);
    return { status: res.status, text: await res.text() };
  }

  it.each(cases)('%s (%s) → %i, an error envelope, no byte of the file outside', async (_name, query, status) => {
    const res = await download(query);
    expect(res.status).toBe(status);
    expect(res.text).not.toContain('TOP SECRET');
    expect(JSON.parse(res.text).error.code).toMatch(/^(INVALID_PARAMETER|NOT_FOUND)$/);
  });

  it('a file that exists in the output directory → 200 with its bytes', async () => {
    const res = await download('filename=ok.png');
    expect(res).toEqual({ status: 200, text: 'png' });
  });
});

describe('OOM forensics', () => {
  it('attaches the node, the GPU memory timeline, ComfyUI\'s memory and the last log lines', async () => {
    rig = await startRig({ stepMs: 150 });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ batch: 64, steps: 5 }), { clientId: 'w', extra: { job_id: 'oom' } });
    const w = await until(async () => {
      const r = await wf(rig!, 'oom');
      return r.body.error?.forensics ? r.body : undefined;
    });
    const f = w.error.forensics;
    expect(f).toMatchObject({ kind: 'gpu_oom', node_id: '3', class_type: 'KSampler' });
    expect(f.comfyui_system_stats.devices[0].name).toMatch(/H200/);
    expect(f.last_log_lines.some((l: string) => l.startsWith('!!! Exception during processing'))).toBe(true);
    expect(Array.isArray(f.gpu_memory_timeline)).toBe(true);
    const metrics = await (await fetch(`${rig.base}/metrics`)).text();
    expect(metrics).toMatch(/podscope_oom_failures_total\{kind="gpu"\} 1/);
  });

  it('reports a job whose ComfyUI vanished without an error as a probable RAM OOM', async () => {
    rig = await startRig({ stepMs: 200 });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 40 }), { clientId: 'w', extra: { job_id: 'killed' } });
    await until(async () => (await wf(rig!, 'killed')).body.status === 'running');
    await rig.sim.restart(1500);
    const w = await until(async () => {
      const r = await wf(rig!, 'killed');
      return r.body.status === 'lost' ? r.body : undefined;
    }, 8000);
    expect(w.error).toMatchObject({ exception_type: 'ProbableSystemRamOom' });
  });
});
