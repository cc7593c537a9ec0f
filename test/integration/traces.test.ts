/**
 * Job traces over OTLP/HTTP, end to end: the simulated ComfyUI (with the tap) runs prompts,
 * podscope exports their traces, and a loopback receiver decodes what arrives (protobuf and
 * JSON) into the tree a collector would store.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, until, type Rig } from '../helpers/comfy-rig.js';
import { ms, startReceiver, type ReceivedSpan, type Receiver } from '../helpers/otlp-receiver.js';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { FakeSmi } from '../helpers/fake-smi.js';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const SECRET_HEADER = 'collector-api-key-4f9a2c77e1';

let receiver: Receiver;
let rig: Rig;
beforeAll(async () => {
  receiver = await startReceiver();
  rig = await startRig(
    { tap: true, stepMs: 20, nodeMs: 10 },
    { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${SECRET_HEADER}`, OTEL_BSP_SCHEDULE_DELAY: '20', RUNPOD_POD_ID: 'pod-traces-1', PODSCOPE_ENV: 'development' },
  );
});
afterAll(async () => {
  await rig.close();
  await receiver.close();
});

let n = 0;
async function run(opts: { traceparent?: string; traceId?: string; batch?: number; steps?: number } = {}): Promise<string> {
  const jobId = `job-trace-${++n}`;
  const extra: Record<string, unknown> = { job_id: jobId };
  if (opts.traceparent) extra.traceparent = opts.traceparent;
  if (opts.traceId) extra.trace_id = opts.traceId;
  const r = await submit(rig.sim.url, txt2img({ steps: opts.steps ?? 3, seed: n * 101, batch: opts.batch }), { extra });
  expect(r.status).toBe(200);
  return jobId;
}

/** The job's spans once its job span has arrived: the job span and everything under it. */
async function tree(recv: Receiver, jobId: string): Promise<{ job: ReceivedSpan; children: ReceivedSpan[] }> {
  const job = await until(() => recv.spans().find((s) => s.name === 'comfyui.job' && s.attributes['podscope.job.id'] === jobId), 15_000);
  return { job, children: recv.spans().filter((s) => s.parentSpanId === job.spanId) };
}

describe('a job’s trace', () => {
  it('continues the platform’s trace: the job span’s parent is the traceparent in extra_data', async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const jobId = await run({ traceparent: `00-${traceId}-${parentId}-01` });
    const { job, children } = await tree(receiver, jobId);
    expect(job.traceId).toBe(traceId);
    expect(job.parentSpanId).toBe(parentId);
    expect(children.length).toBeGreaterThan(1);
    for (const c of children) expect(c.traceId).toBe(traceId);
  });

  it('has a child for the time in the queue and one per executed node, in the job’s span', async () => {
    const jobId = await run({ traceparent: `00-${hex(16)}-${hex(8)}-01` });
    const { job, children } = await tree(receiver, jobId);
    const names = children.map((c) => c.name);
    expect(names).toContain('comfyui.queue');
    expect(names.filter((x) => x !== 'comfyui.queue').sort()).toEqual(['CLIPTextEncode', 'CLIPTextEncode', 'CheckpointLoaderSimple', 'EmptyLatentImage', 'KSampler', 'SaveImage', 'VAEDecode']);
    const sampler = children.find((c) => c.name === 'KSampler')!;
    expect(sampler.attributes).toMatchObject({ 'comfyui.node.class_type': 'KSampler', 'comfyui.node.cached': false, 'comfyui.node.status': 'completed', 'comfyui.node.steps': 3, 'comfyui.node.steps_total': 3, 'podscope.timing': 'comfyui' });
    expect(job.attributes).toMatchObject({ 'podscope.job.id': jobId, 'comfyui.job.status': 'success', 'podscope.timing': 'comfyui' });
    expect(job.status.code).toBe(0);
  });

  it('places every span on ComfyUI’s times, as /debug/workflow reports them', async () => {
    const jobId = await run({ traceparent: `00-${hex(16)}-${hex(8)}-01` });
    const { job, children } = await tree(receiver, jobId);
    const wf = (await rig.get(`/debug/workflow?job_id=${jobId}`)).body;
    const at = (iso: string) => Date.parse(iso);
    expect(ms(job.end)).toBeCloseTo(at(wf.finished_at), 0);
    for (const node of wf.nodes.filter((x: { started_at: string | null }) => x.started_at)) {
      const span = children.find((c) => c.attributes['comfyui.node.id'] === node.node_id)!;
      expect(ms(span.start)).toBeCloseTo(at(node.started_at), 0);
      expect(ms(span.end)).toBeCloseTo(at(node.finished_at), 0);
      expect(span.start).toBeGreaterThanOrEqual(job.start);
      expect(span.end).toBeLessThanOrEqual(job.end);
    }
    const queue = children.find((c) => c.name === 'comfyui.queue')!;
    expect(queue.start).toBe(job.start);
    expect(ms(queue.end)).toBeCloseTo(at(wf.started_at), 0);
  });

  it('is a root in the trace the job’s logs carry when no traceparent came', async () => {
    const traceId = hex(16);
    const jobId = await run({ traceId });
    const { job } = await tree(receiver, jobId);
    expect(job.traceId).toBe(traceId);
    expect(job.parentSpanId).toBe('');
  });

  it('says a GPU out-of-memory error on the node that raised it and on the job', async () => {
    const jobId = await run({ batch: 64 });
    const { job, children } = await tree(receiver, jobId);
    expect(job.status.code).toBe(2);
    expect(job.attributes['error.type']).toBe('torch.OutOfMemoryError');
    expect(job.events.map((e) => e.name)).toContain('comfyui.oom');
    const sampler = children.find((c) => c.name === 'KSampler')!;
    expect(sampler.status.code).toBe(2);
    const exception = sampler.events.find((e) => e.name === 'exception')!;
    expect(exception.attributes['exception.type']).toBe('torch.OutOfMemoryError');
    expect(String(exception.attributes['exception.stacktrace'])).toContain('sample_euler');
    expect(children.some((c) => c.name === 'SaveImage')).toBe(false);
  });

  it('says an interruption with an event at the moment it stopped', async () => {
    const jobId = await run({ steps: 200 });
    await until(async () => (await rig.get(`/debug/workflow?job_id=${jobId}`)).body.status === 'running');
    await fetch(`${rig.sim.url}/interrupt`, { method: 'POST', body: '{}' });
    const { job, children } = await tree(receiver, jobId);
    const stop = job.events.find((e) => e.name === 'comfyui.interrupted')!;
    expect(stop.time).toBe(job.end);
    expect(job.attributes['comfyui.job.status']).toBe('interrupted');
    const stopped = children.find((c) => c.attributes['comfyui.node.status'] === 'interrupted')!;
    expect(stopped.events.map((e) => e.name)).toEqual(['comfyui.interrupted']);
    expect(stopped.end).toBeLessThanOrEqual(job.end);
    expect(job.status.code).toBe(0);
  });

  it('describes the pod as the resource, and podscope as the instrumentation', async () => {
    const { job } = await tree(receiver, await run());
    expect(job.resource).toMatchObject({ 'service.name': 'comfyui', 'service.instance.id': 'pod-traces-1', 'runpod.pod.id': 'pod-traces-1', 'telemetry.sdk.language': 'nodejs' });
    expect(job.scope.name).toBe('podscope');
  });

  it('sends protobuf by default, with the configured headers', () => {
    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const r of receiver.requests) {
      expect(r.contentType).toBe('application/x-protobuf');
      expect(r.headers['x-api-key']).toBe(SECRET_HEADER);
    }
  });

  it('never lets the collector’s header value out in an answer', async () => {
    for (const path of ['/debug/status', '/debug/connections', '/debug/config', '/metrics', '/debug/logs?lines=1000']) {
      const r = await fetch(`${rig.base}${path}`);
      expect(r.status).toBe(200);
      expect(await r.text()).not.toContain(SECRET_HEADER);
    }
  });

  it('shows the exporter’s state in /debug/connections', async () => {
    const { body } = await rig.get('/debug/connections');
    expect(body.otlp).toMatchObject({ url: `${receiver.url}/v1/traces`, protocol: 'http/protobuf', capacity: 2048, last_error: null });
    expect(body.otlp.exported).toBeGreaterThan(0);
  });

  it('exports nothing for a job whose caller did not sample its trace, and counts it', async () => {
    const traceId = hex(16);
    const jobId = await run({ traceparent: `00-${traceId}-${hex(8)}-00` });
    await until(async () => (await rig.get(`/debug/workflow?job_id=${jobId}`)).body.status === 'success');
    await until(async () => /podscope_trace_jobs_unsampled_total [1-9]/.test((await rig.get('/metrics')).body));
    const marker = await run();
    await tree(receiver, marker);
    expect(receiver.spans().some((s) => s.traceId === traceId)).toBe(false);
  });

  it('counts the spans it exported in /metrics', async () => {
    const text = (await rig.get('/metrics')).body as string;
    const exported = Number(/^podscope_trace_spans_exported_total (\d+)/m.exec(text)?.[1]);
    expect(exported).toBeGreaterThan(0);
    expect(text).toMatch(/^podscope_trace_spans_dropped_total\{reason="queue_full"\} 0$/m);
    expect(text).toMatch(/^podscope_trace_queue_capacity_spans 2048$/m);
  });
});

describe('OTLP/JSON', () => {
  it('sends the same tree as JSON when OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json', async () => {
    const json = await startReceiver();
    const jsonRig = await startRig({ tap: true, stepMs: 20, nodeMs: 10 }, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${json.url}/v1/traces`, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '20' });
    try {
      const traceId = hex(16);
      const parentId = hex(8);
      await submit(jsonRig.sim.url, txt2img({ steps: 2, seed: 5 }), { extra: { job_id: 'job-json', traceparent: `00-${traceId}-${parentId}-01` } });
      const { job, children } = await tree(json, 'job-json');
      expect(json.requests[0]!.contentType).toBe('application/json');
      expect(job.traceId).toBe(traceId);
      expect(job.parentSpanId).toBe(parentId);
      expect(children.map((c) => c.name)).toContain('KSampler');
      expect(children.find((c) => c.name === 'KSampler')!.attributes['comfyui.node.steps']).toBe(2);
    } finally {
      await jsonRig.close();
      await json.close();
    }
  });
});

describe('a collector that refuses, is not there, or never answers', () => {
  async function faultyRig(url: string, env: Record<string, string> = {}) {
    return startRig({ tap: true, stepMs: 10, nodeMs: 5 }, { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_TIMEOUT: '300', OTEL_BSP_SCHEDULE_DELAY: '10', LOG_LEVEL: 'warn', ...env });
  }
  const metric = async (r: Rig, pattern: RegExp) => Number(pattern.exec((await r.get('/metrics')).body)?.[1] ?? NaN);
  const failed = /^podscope_trace_spans_dropped_total\{reason="export_failed"\} (\d+)$/m;
  const full = /^podscope_trace_spans_dropped_total\{reason="queue_full"\} (\d+)$/m;

  it('counts the spans of a refusing collector as export_failed, logs the trouble once, and answers as before', async () => {
    const refusing = await startReceiver();
    refusing.answer = 503;
    const r = await faultyRig(refusing.url);
    try {
      for (let i = 0; i < 3; i++) await submit(r.sim.url, txt2img({ steps: 2, seed: 700 + i }), { extra: { job_id: `job-refused-${i}` } });
      await until(async () => (await metric(r, failed)) > 0, 30_000);
      expect((await r.get('/health')).status).toBe(200);
      expect((await r.get('/debug/status')).status).toBe(200);
      await until(async () => (await r.get('/debug/workflow?job_id=job-refused-2')).body.status === 'success', 30_000);
      await until(async () => (await metric(r, failed)) >= 3 * 9, 30_000);
      const logs = (await r.get('/debug/logs?source=podscope&lines=1000&format=json')).body.lines as Array<{ message: string }>;
      expect(logs.filter((l) => l.message.startsWith('trace export failing')).length).toBe(1);
    } finally {
      await r.close();
      await refusing.close();
    }
  });

  it('counts the spans as export_failed when nothing listens at the endpoint', async () => {
    const gone = await startReceiver();
    const url = gone.url;
    await gone.close();
    const r = await faultyRig(url);
    try {
      await submit(r.sim.url, txt2img({ steps: 2, seed: 801 }), { extra: { job_id: 'job-nobody' } });
      await until(async () => (await metric(r, failed)) > 0, 30_000);
      expect((await r.get('/health')).status).toBe(200);
    } finally {
      await r.close();
    }
  });

  it('holds no more than its queue while the collector never answers, drops the rest as queue_full, and still stops', async () => {
    const silent = await startReceiver();
    silent.answer = 'hang';
    const r = await faultyRig(silent.url, { OTEL_EXPORTER_OTLP_TIMEOUT: '60000', OTEL_BSP_EXPORT_TIMEOUT: '60000', OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '5' });
    try {
      for (let i = 0; i < 4; i++) await submit(r.sim.url, txt2img({ steps: 2, seed: 900 + i }), { extra: { job_id: `job-silent-${i}` } });
      await until(async () => (await r.get('/debug/workflow?job_id=job-silent-3')).body.status === 'success', 30_000);
      // Four jobs of nine spans: one batch of five is held by the silent collector, ten wait, the rest are dropped.
      await until(async () => (await metric(r, full)) === 4 * 9 - 5 - 10, 30_000);
      expect(await metric(r, /^podscope_trace_queue_spans (\d+)$/m)).toBe(10);
      expect((await r.get('/health')).status).toBe(200);
    } finally {
      await r.close();
      await silent.close();
    }
  });
});

describe('the resource of a pod with GPUs', () => {
  it('names the GPUs nvidia-smi reports and counts them', async () => {
    const fake = new FakeSmi({ fixture: 'h200-x1.drv590.load', gpus: 2 });
    process.env.FAKE_NVIDIA_SMI = fake.file;
    const recv = await startReceiver();
    const r = await startRig({ tap: true, stepMs: 10, nodeMs: 5 }, { PODSCOPE_GPU: 'on', PODSCOPE_NVIDIA_SMI: fake.bin, PODSCOPE_GPU_BACKEND: 'nvidia-smi', PODSCOPE_GPU_INTERVAL_MS: '200', OTEL_EXPORTER_OTLP_ENDPOINT: recv.url, OTEL_BSP_SCHEDULE_DELAY: '20' });
    try {
      await until(async () => (await r.get('/debug/status')).body.gpus?.length === 2, 30_000);
      await submit(r.sim.url, txt2img({ steps: 2, seed: 4242 }), { extra: { job_id: 'job-gpus' } });
      const { job } = await tree(recv, 'job-gpus');
      expect(job.resource).toMatchObject({ 'podscope.gpu.count': 2, 'podscope.gpu.name': 'NVIDIA H200' });
      expect(job.attributes['podscope.job.gpu_seconds']).toEqual(expect.any(Number));
    } finally {
      await r.close();
      await recv.close();
    }
  });
});
