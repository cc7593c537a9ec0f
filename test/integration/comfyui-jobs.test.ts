import { afterEach, describe, expect, it } from 'vitest';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { startRig, SubmitterClient, until, type Rig } from '../helpers/comfy-rig.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

async function ready(r: Rig) {
  await until(async () => (await r.get('/ready')).status === 200);
}

const workflow = (r: Rig, id: string) => r.get(`/debug/workflow?job_id=${encodeURIComponent(id)}`);

describe('a prompt from another client', () => {
  it('shows running with its nodes within 1 s of starting, then success with every node counted, without podscope using its clientId', async () => {
    rig = await startRig();
    await ready(rig);
    const worker = await new SubmitterClient(rig.sim.url, 'worker-7f3a').connect();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const { body } = await submit(rig.sim.url, txt2img({ steps: 10 }), {
      clientId: worker.clientId,
      extra: { job_id: 'job_xyz', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });

    const startedAt = await worker.waitFor((f) => f.type === 'execution_start');
    const running = await until(async () => {
      const w = await workflow(rig!, 'job_xyz');
      return w.status === 200 && w.body.status === 'running' ? w.body : undefined;
    });
    expect(Date.now() - startedAt).toBeLessThan(1000);
    expect(running).toMatchObject({ job_id: 'job_xyz', prompt_id: body.prompt_id, trace_id: traceId, client_id: 'worker-7f3a', nodes_total: 7 });
    expect(running.nodes.map((n: { class_type: string }) => n.class_type)).toContain('KSampler');
    // Nodes come in dependency order: the loader first, the output last.
    expect(running.nodes[0]).toMatchObject({ id: 'CheckpointLoaderSimple_4', node_id: '4', class_type: 'CheckpointLoaderSimple', title: 'Load Checkpoint' });
    expect(running.nodes.at(-1)).toMatchObject({ node_id: '9', class_type: 'SaveImage' });

    const endedAt = await worker.waitFor((f) => f.type === 'executing' && f.data.node === null);
    const done = await until(async () => {
      const w = await workflow(rig!, 'job_xyz');
      return w.body.status === 'success' ? w.body : undefined;
    });
    expect(Date.now() - endedAt).toBeLessThan(1000);
    expect(done.nodes_completed).toBe(done.nodes_total);
    expect(done.progress_percent).toBe(100);
    expect(done.error).toBeNull();
    expect(done.nodes.every((n: { status: string }) => n.status === 'completed')).toBe(true);

    // The same job by its prompt_id.
    expect((await workflow(rig, body.prompt_id!)).body.job_id).toBe('job_xyz');
    // podscope never connected as the submitter.
    expect(rig.sim.connectedClientIds.filter((id) => id === 'worker-7f3a')).toHaveLength(1);
    expect(rig.sim.connectedClientIds.filter((id) => id !== 'worker-7f3a').every((id) => id.startsWith('podscope-'))).toBe(true);
    worker.close();
  });

  it('counts cached nodes as completed on a fully cached resubmit', async () => {
    rig = await startRig();
    await ready(rig);
    const first = await submit(rig.sim.url, txt2img({ steps: 3 }), { clientId: 'c1', extra: { job_id: 'first' } });
    await until(async () => (await workflow(rig!, 'first')).body.status === 'success');
    await submit(rig.sim.url, txt2img({ steps: 3 }), { clientId: 'c1', extra: { job_id: 'again' } });
    const again = await until(async () => {
      const w = await workflow(rig!, 'again');
      return w.body.status === 'success' ? w.body : undefined;
    });
    expect(first.status).toBe(200);
    expect(again.nodes.every((n: { status: string }) => n.status === 'cached')).toBe(true);
    expect(again.nodes_completed).toBe(again.nodes_total);
    expect(again.progress_percent).toBe(100);
  });

  it("uses ComfyUI's Jobs API, when it has one, to find prompts that finished between two looks", async () => {
    rig = await startRig({ jobsApi: true });
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 40 }), { clientId: 'c1', extra: { job_id: 'j1' } });
    await until(async () => (await workflow(rig!, 'j1')).body.status === 'success');
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 40 }), { clientId: 'c1', extra: { job_id: 'j2' } });
    const again = await until(async () => {
      const w = await workflow(rig!, 'j2');
      return w.body.status === 'success' ? w.body : undefined;
    });
    expect(again.nodes_completed).toBe(again.nodes_total);
    expect(rig.sim.requests.some((r) => r.startsWith('GET /api/jobs?'))).toBe(true);
    expect(rig.sim.requests.filter((r) => r.startsWith('GET /history?')).length).toBe(0);
  });

  it('misses none of a burst of 120 prompts that each finish in milliseconds', async () => {
    rig = await startRig({}, { PODSCOPE_JOB_HISTORY: '500' });
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 1, seed: 99 }), { extra: { job_id: 'warm' } });
    await until(async () => (await workflow(rig!, 'warm')).body.status === 'success');
    await Promise.all(Array.from({ length: 120 }, (_, i) => submit(rig!.sim.url, txt2img({ steps: 1, seed: 99 }), { clientId: `b${i}`, extra: { job_id: `burst_${i}` } })));
    await until(async () => {
      const done = await Promise.all(Array.from({ length: 120 }, (_, i) => workflow(rig!, `burst_${i}`)));
      return done.every((w) => w.body.status === 'success');
    }, 15_000, 200);
  }, 30_000);

  it('marks unchanged upstream nodes cached and the rest completed', async () => {
    rig = await startRig();
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 3, seed: 1 }), { extra: { job_id: 'a' } });
    await until(async () => (await workflow(rig!, 'a')).body.status === 'success');
    await submit(rig.sim.url, txt2img({ steps: 3, seed: 2 }), { extra: { job_id: 'b' } });
    const b = await until(async () => {
      const w = await workflow(rig!, 'b');
      return w.body.status === 'success' ? w.body : undefined;
    });
    const status = Object.fromEntries(b.nodes.map((n: { node_id: string; status: string }) => [n.node_id, n.status]));
    expect(status).toEqual({ '4': 'cached', '5': 'cached', '6': 'cached', '7': 'cached', '3': 'completed', '8': 'completed', '9': 'completed' });
  });
});

describe('failures', () => {
  it('shows a GPU out-of-memory as error with exception_type and the node', async () => {
    rig = await startRig();
    await ready(rig);
    await submit(rig.sim.url, txt2img({ batch: 64, steps: 5 }), { clientId: 'worker-oom', extra: { job_id: 'oom' } });
    const w = await until(async () => {
      const r = await workflow(rig!, 'oom');
      return r.body.status === 'error' ? r.body : undefined;
    });
    expect(w.error).toMatchObject({ node_id: '3', class_type: 'KSampler', exception_type: 'torch.OutOfMemoryError' });
    expect(w.error.exception_message).toMatch(/^Allocation on device/);
    expect(w.error.traceback.length).toBeGreaterThan(0);
    const status = Object.fromEntries(w.nodes.map((n: { node_id: string; status: string }) => [n.node_id, n.status]));
    expect(status['3']).toBe('error');
    expect(status['8']).toBe('skipped');
    expect(status['9']).toBe('skipped');
    expect(status['4']).toBe('completed');
  });

  it('shows an interrupted job as interrupted', async () => {
    rig = await startRig({ stepMs: 100 });
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 30 }), { clientId: 'ui', extra: { job_id: 'stop-me' } });
    await until(async () => (await workflow(rig!, 'stop-me')).body.status === 'running');
    await fetch(`${rig.sim.url}/interrupt`, { method: 'POST', body: '{}' });
    const w = await until(async () => {
      const r = await workflow(rig!, 'stop-me');
      return r.body.status === 'interrupted' ? r.body : undefined;
    });
    expect(w.error).toMatchObject({ exception_type: 'Interrupted' });
    expect(w.progress_percent).toBeLessThan(100);
  });

  it('ends a job as lost when ComfyUI restarts under it, and tracks the next job normally', async () => {
    rig = await startRig({ stepMs: 100 });
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 50 }), { clientId: 'w1', extra: { job_id: 'doomed' } });
    await until(async () => (await workflow(rig!, 'doomed')).body.status === 'running');
    await rig.sim.restart(300);
    const lost = await until(async () => {
      const r = await workflow(rig!, 'doomed');
      return r.body.status === 'lost' ? r.body : undefined;
    }, 8000);
    expect(lost.lost_reason).toMatch(/restarted|left the queue/);
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 3, seed: 9 }), { clientId: 'w2', extra: { job_id: 'next' } });
    const next = await until(async () => {
      const r = await workflow(rig!, 'next');
      return r.body.status === 'success' ? r.body : undefined;
    });
    expect(next.nodes_completed).toBe(next.nodes_total);
  });

  it('answers 404 JOB_NOT_FOUND for an unknown job and NO_JOB before any job', async () => {
    rig = await startRig();
    await ready(rig);
    const none = await rig.get('/debug/workflow');
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('NO_JOB');
    const unknown = await workflow(rig, 'nope');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('JOB_NOT_FOUND');
  });

  it('rejects a bad job_id with 400 naming the parameter', async () => {
    rig = await startRig();
    const r = await rig.get(`/debug/workflow?job_id=${'x'.repeat(300)}`);
    expect(r.status).toBe(400);
    expect(r.body.error.details.parameter).toBe('job_id');
  });
});

describe('live progress', () => {
  it('shows sampler steps live for a prompt submitted without a client_id (broadcast progress)', async () => {
    rig = await startRig({ stepMs: 60 });
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 20 }), { extra: { job_id: 'anon' } });
    const mid = await until(async () => {
      const r = await workflow(rig!, 'anon');
      const ks = r.body.nodes?.find((n: { class_type: string }) => n.class_type === 'KSampler');
      return ks?.status === 'running' && ks.progress?.steps > 2 ? r.body : undefined;
    });
    const ks = mid.nodes.find((n: { class_type: string }) => n.class_type === 'KSampler');
    expect(ks.progress.total).toBe(20);
    const status = await rig.get('/debug/status');
    expect(status.body.status).toBe('processing');
    expect(status.body.current_job).toMatchObject({ job_id: 'anon', current_node: { class_type: 'KSampler' } });
  });

  it('keeps progress_percent from ever going down, and ends at 100', async () => {
    rig = await startRig({ stepMs: 30 });
    await ready(rig);
    await submit(rig.sim.url, txt2img({ steps: 15 }), { extra: { job_id: 'mono' } });
    const seen: number[] = [];
    await until(async () => {
      const r = await workflow(rig!, 'mono');
      if (r.status === 200) seen.push(r.body.progress_percent);
      return r.body.status === 'success';
    });
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]!)).toBe(true);
    expect(seen.at(-1)).toBe(100);
  });

  it('reports a running job with no sign of life as STALLED, naming the node', async () => {
    rig = await startRig({}, { PODSCOPE_STALL_S: '5', PODSCOPE_COMFYUI_POLL_MS: '300' });
    await ready(rig);
    const graph = { '1': { class_type: 'SimSleep', inputs: { seconds: 8 } }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'x' } } };
    await submit(rig.sim.url, graph, { clientId: 'w', extra: { job_id: 'slowpoke' } });
    const problem = await until(async () => {
      const s = await rig!.get('/debug/status');
      return s.body.problems.find((p: { code: string }) => p.code === 'STALLED');
    }, 9000, 200);
    expect(problem.message).toMatch(/job slowpoke has shown no sign of life/);
  }, 15_000);
});

describe('/debug/queue', () => {
  it('lists running and pending prompts in execution order with positions, and no secret', async () => {
    rig = await startRig();
    await ready(rig);
    const sleepGraph = { '1': { class_type: 'SimSleep', inputs: { seconds: 3 } }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'q' } } };
    await submit(rig.sim.url, sleepGraph, { clientId: 'w', extra: { job_id: 'q1' } });
    await submit(rig.sim.url, txt2img({ seed: 11 }), { clientId: 'w', extra: { job_id: 'q2', api_key_comfy_org: 'comfyui-api-planted-1234567' } });
    await submit(rig.sim.url, txt2img({ seed: 12 }), { clientId: 'w', extra: { job_id: 'q3', auth_token_comfy_org: 'auth-planted-7654321' } });
    const q = await until(async () => {
      const r = await rig!.get('/debug/queue');
      return r.body.running.length === 1 && r.body.pending.length === 2 ? r : undefined;
    });
    expect(q.body.running[0]).toMatchObject({ job_id: 'q1', client_id: 'w', number: 1 });
    expect(q.body.pending.map((j: { job_id: string; position: number }) => [j.job_id, j.position])).toEqual([
      ['q2', 1],
      ['q3', 2],
    ]);
    const text = JSON.stringify(q.body);
    expect(text).not.toContain('comfyui-api-planted-1234567');
    expect(text).not.toContain('auth-planted-7654321');
    expect(q.body.pending[0].extra_data.api_key_comfy_org).toBe('[REDACTED]');
    expect(q.body.queue_remaining).toBe(3);
  });
});

describe('the websocket', () => {
  it('replaces a socket that goes silent without closing, within two ping intervals', async () => {
    rig = await startRig({}, { PODSCOPE_WS_PING_MS: '500' });
    await ready(rig);
    rig.sim.silence(true);
    const t = Date.now();
    await until(async () => rig!.pod.state.comfy!.wsReconnects >= 1, 3000);
    expect(Date.now() - t).toBeLessThan(2 * 500 + 500);
    rig.sim.silence(false);
    await ready(rig);
  });

  it('counts unknown types and malformed frames, and survives garbage and a frame over the limit', async () => {
    rig = await startRig({}, { PODSCOPE_WS_MAX_FRAME_BYTES: '65536' });
    await ready(rig);
    rig.sim.broadcastRaw(JSON.stringify({ type: 'crystools.monitor', data: { gpus: [] } }));
    rig.sim.broadcastRaw(JSON.stringify({ type: 'some.custom.node', data: {} }));
    rig.sim.broadcastRaw('{not json');
    rig.sim.broadcastRaw(JSON.stringify([1, 2, 3]));
    rig.sim.broadcastRaw(Buffer.from([0, 0]));
    const comfy = rig.pod.state.comfy!;
    await until(async () => comfy.malformedFrames >= 3);
    expect(comfy.framesByType.get('other')).toBe(1);
    expect(comfy.framesByType.get('crystools.monitor')).toBe(1);
    rig.sim.broadcastRaw(Buffer.alloc(200_000));
    await until(async () => comfy.wsReconnects >= 1);
    await ready(rig);
    const metrics = await (await fetch(`${rig.base}/metrics`)).text();
    expect(metrics).toMatch(/podscope_comfyui_malformed_frames_total\{comfyui="\d+"\} 3/);
    expect(metrics).toMatch(/podscope_comfyui_frames_total\{comfyui="\d+",type="other"\} 1/);
  });
});
