import { execFile } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/spawn.js';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { startRig, until, type Rig } from '../helpers/comfy-rig.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

const SECRET = 'comfy-org-key-9f8e7d6c5b4a';

describe('ComfyUI logs through the live stream', () => {
  it('returns exactly the error lines of one job, tracebacks whole, no secret', async () => {
    rig = await startRig({ stepMs: 300 }, { COMFY_ORG_API_KEY: SECRET });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 3, seed: 1 }), { clientId: 'w', extra: { job_id: 'fine' } });
    await until(async () => (await rig!.get('/debug/workflow?job_id=fine')).body.status === 'success');
    await submit(rig.sim.url, txt2img({ batch: 64, steps: 4, seed: 2 }), { clientId: 'w', extra: { job_id: 'J' } });
    await until(async () => (await rig!.get('/debug/workflow?job_id=J')).body.status === 'running');
    rig.sim.log(`!!! Exception during processing !!! token ${SECRET} rejected\n`);
    await until(async () => (await rig!.get('/debug/workflow?job_id=J')).body.status === 'error');
    const logs = await until(async () => {
      const r = await rig!.get('/debug/logs?lines=50&level=error&job_id=J');
      return r.body.lines.some((l: { message: string }) => l.message.startsWith('Got an OOM')) ? r.body : undefined;
    });
    const messages: string[] = logs.lines.map((l: { message: string }) => l.message);
    expect(logs.lines.every((l: { level: string; job_id: string }) => l.level === 'error' && l.job_id === 'J')).toBe(true);
    expect(messages.map((m) => m.split('\n')[0])).toEqual([
      '!!! Exception during processing !!! token [REDACTED] rejected',
      '!!! Exception during processing !!! Allocation on device ',
      'Traceback (most recent call last):',
      'Got an OOM, unloading all loaded models.',
    ]);
    const tb = messages.find((m) => m.startsWith('Traceback'))!;
    expect(tb.split('\n').at(-1)).toBe('torch.OutOfMemoryError: Allocation on device ');
    expect(JSON.stringify(logs)).not.toContain(SECRET);
    // The job's own lines include its start and end; the other job's do not leak in.
    const all = (await rig.get('/debug/logs?lines=200&job_id=J')).body.lines.map((l: { message: string }) => l.message);
    expect(all.some((m: string) => m.startsWith('Prompt executed in'))).toBe(true);
  });

  it("shows another client's sampler steps from the log's tqdm bar, and its inputs done", async () => {
    rig = await startRig({ stepMs: 80 });
    await until(async () => (await rig!.get('/ready')).status === 200);
    await submit(rig.sim.url, txt2img({ steps: 20, seed: 5 }), { clientId: 'worker-no-events', extra: { job_id: 'quiet' } });
    const w = await until(async () => {
      const r = await rig!.get('/debug/workflow?job_id=quiet');
      const ks = r.body.nodes?.find((n: { class_type: string }) => n.class_type === 'KSampler');
      return ks?.status === 'running' && ks.progress?.steps >= 3 ? r.body : undefined;
    });
    const status = Object.fromEntries(w.nodes.map((n: { node_id: string; status: string }) => [n.node_id, n.status]));
    expect(status).toMatchObject({ '4': 'completed', '5': 'completed', '6': 'completed', '7': 'completed', '3': 'running', '8': 'pending', '9': 'pending' });
    expect(w.nodes.find((n: { node_id: string }) => n.node_id === '3').progress.total).toBe(20);
    expect(w.sources).toContain('logs');
  });

  it('records a rejected prompt in /debug/status and /debug/queue', async () => {
    rig = await startRig();
    await until(async () => (await rig!.get('/ready')).status === 200);
    const r = await submit(rig.sim.url, txt2img({ ckpt: 'missing.safetensors' }), { clientId: 'w' });
    expect(r.status).toBe(400);
    const status = await until(async () => {
      const s = await rig!.get('/debug/status');
      return s.body.problems.find((p: { code: string }) => p.code === 'PROMPT_REJECTED');
    });
    expect(status.message).toMatch(/CheckpointLoaderSimple 4: Value not in list: ckpt_name: 'missing.safetensors'/);
    const q = await rig.get('/debug/queue');
    expect(q.body.rejected[0].lines).toContain("  - Value not in list: ckpt_name: 'missing.safetensors' not in ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.safetensors']");
  });

  it('podscope wait on a job never seen names the rejection seen meanwhile, with its reason', async () => {
    rig = await startRig();
    await until(async () => (await rig!.get('/ready')).status === 200);
    // The CLI runs as an async child: podscope serves from this process.
    const waiting = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'wait', '--url', rig!.base, '--job', 'never-queued', '--timeout', '6', '--interval', '0.2'], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
    const r = await submit(rig.sim.url, txt2img({ ckpt: 'missing.safetensors' }), { clientId: 'w', extra: { job_id: 'never-queued' } });
    expect(r.status).toBe(400);
    await until(async () => (await rig!.get('/debug/queue')).body.rejected.length > 0);
    const cli = await waiting;
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/ComfyUI rejected a prompt at \S+ \(HTTP 400, never queued, job id unknown without the tap\): CheckpointLoaderSimple 4: Value not in list: ckpt_name: 'missing.safetensors'/);
    expect(cli.stdout).toMatch(/timed out after 6 s waiting for job never-queued \(last seen: not yet seen\); meanwhile a prompt was rejected, which may have been this job:\n  ComfyUI rejected a prompt at/);
  }, 30_000);

  it('loads the backlog at connect: lines printed before podscope started are there once', async () => {
    rig = await startRig();
    await until(async () => (await rig!.get('/ready')).status === 200);
    const lines = await until(async () => {
      const r = await rig!.get('/debug/logs?source=comfyui&lines=100');
      return r.body.lines.length >= 2 ? r.body.lines.map((l: { message: string }) => l.message) : undefined;
    });
    expect(lines.filter((m: string) => m === 'Starting server')).toHaveLength(1);
    expect(lines.some((m: string) => m.startsWith('To see the GUI go to'))).toBe(true);
  });

  it('subscribes again after the websocket reconnects', async () => {
    rig = await startRig({}, { PODSCOPE_WS_PING_MS: '400' });
    await until(async () => (await rig!.get('/ready')).status === 200);
    rig.sim.silence(true);
    await until(async () => rig!.pod.state.comfy!.wsReconnects >= 1, 3000);
    rig.sim.silence(false);
    await until(async () => (await rig!.get('/ready')).status === 200);
    // podscope subscribes again right after connecting: wait for ComfyUI to have it.
    const clientId = () => rig!.pod.state.comfy!.wsClientId;
    await until(async () => rig!.sim.subscriberIds().includes(clientId() ?? ''));
    rig.sim.log('a line after the reconnect\n');
    await until(async () => (await rig!.get('/debug/logs?q=after%20the%20reconnect')).body.lines.length === 1);
  });
});
