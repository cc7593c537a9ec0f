/**
 * Job traces from a real ComfyUI: prompts submitted with the platform's traceparent
 * arrive at a loopback OTLP receiver as the expected tree under that parent, placed on the times
 * ComfyUI itself recorded in /history, with the tap node and without it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealComfy } from './real-comfy.js';
import { failingGraph, samplerGraph, startRealRig, until, type RealRig, type Submitter } from './harness.js';
import { ms, startReceiver, type ReceivedSpan, type Receiver } from '../helpers/otlp-receiver.js';
import { RELEASE } from './release.js';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** ComfyUI's own record of a prompt: the ms timestamps of its execution_* messages. */
async function historyTimes(comfy: RealComfy, promptId: string): Promise<Record<string, number>> {
  const body = (await (await fetch(`${comfy.url}/history/${promptId}`)).json()) as Record<string, { status: { messages: Array<[string, { timestamp: number }]> } }>;
  return Object.fromEntries(body[promptId]!.status.messages.map(([type, data]) => [type, data.timestamp]));
}

for (const mode of ['tap', 'observer'] as const) {
  describe(`traces from the real ComfyUI (${mode === 'tap' ? 'with the tap node' : 'without the tap node'})`, () => {
    let rig: RealRig;
    let comfy: RealComfy;
    let receiver: Receiver;
    let worker: Submitter;

    beforeAll(async () => {
      receiver = await startReceiver();
      rig = await startRealRig(mode, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '20', RUNPOD_POD_ID: 'pod-real-traces' });
      ({ comfy, worker } = rig);
    }, 180_000);

    afterAll(async () => {
      await rig?.close();
      await receiver?.close();
    });

    async function traced(graph: ReturnType<typeof samplerGraph>, what: string) {
      const traceId = hex(16);
      const parentId = hex(8);
      const id = `job-${what}-${hex(4)}`;
      const posted = await worker.submit(graph, id, { extra: { traceparent: `00-${traceId}-${parentId}-01` } });
      expect(posted.status).toBe(200);
      const job = await until(() => receiver.spans().find((s) => s.name === 'comfyui.job' && s.attributes['podscope.job.id'] === id), 60_000);
      const children = receiver.spans().filter((s) => s.parentSpanId === job.spanId);
      return { traceId, parentId, job, children, promptId: posted.promptId!, history: await historyTimes(comfy, posted.promptId!) };
    }

    const named = (children: ReceivedSpan[], name: string) => children.find((c) => c.name === name)!;

    it('sends the job under the platform’s span, with a queue child and a child per node', async () => {
      const { traceId, parentId, job, children, promptId } = await traced(samplerGraph({ steps: 6, stepMs: 100 }), 'tree');
      expect(job.traceId).toBe(traceId);
      expect(job.parentSpanId).toBe(parentId);
      expect(job.attributes).toMatchObject({ 'comfyui.prompt.id': promptId, 'comfyui.job.status': 'success' });
      expect(children.map((c) => c.name).sort()).toEqual(['EmptyImage', 'PodscopeSlowLoad', 'PodscopeTqdmSampler', 'SaveImage', 'comfyui.queue']);
      for (const c of children) expect(c.traceId).toBe(traceId);
      expect(job.resource).toMatchObject({ 'service.name': 'comfyui', 'service.version': RELEASE, 'runpod.pod.id': 'pod-real-traces' });
    });

    it('ends the job span at ComfyUI’s execution_success and starts its run at execution_start', async () => {
      const { job, children, history } = await traced(samplerGraph({ steps: 4, stepMs: 100 }), 'times');
      expect(ms(job.end)).toBe(history.execution_success);
      const queue = named(children, 'comfyui.queue');
      if (mode === 'tap') {
        // The tap stamps the acceptance and the start on ComfyUI's clock; /history agrees within a few ms.
        expect(job.attributes['podscope.timing']).toBe('comfyui');
        expect(ms(queue.start)).toBe(ms(job.start));
        expect(Math.abs(ms(queue.end) - history.execution_start!)).toBeLessThanOrEqual(5);
        expect(ms(job.start)).toBeLessThanOrEqual(history.execution_start!);
      } else {
        // ComfyUI 0.3.64 tells no acceptance time: the run starts at execution_start, the queue's start is unknown.
        expect(ms(job.start)).toBe(history.execution_start);
        expect(queue.attributes['podscope.start_unknown']).toBe(true);
      }
    });

    it(mode === 'tap' ? 'places each node on the tap’s times, inside the job' : 'marks node times it does not have from ComfyUI as unknown', async () => {
      const { job, children } = await traced(samplerGraph({ steps: 5, stepMs: 100, loadMs: 300 }), 'nodes');
      const nodes = children.filter((c) => c.name !== 'comfyui.queue');
      for (const n of nodes) {
        expect(n.start).toBeGreaterThanOrEqual(job.start);
        expect(n.end).toBeLessThanOrEqual(job.end);
      }
      const sampler = named(children, 'PodscopeTqdmSampler');
      const loader = named(children, 'PodscopeSlowLoad');
      if (mode === 'tap') {
        expect(sampler.attributes).toMatchObject({ 'podscope.timing': 'comfyui', 'comfyui.node.steps': 5, 'comfyui.node.steps_total': 5 });
        // Five steps of 100 ms and a 300 ms load, on ComfyUI's clock (with room for a busy machine).
        expect(ms(sampler.end) - ms(sampler.start)).toBeGreaterThanOrEqual(500);
        expect(ms(loader.end) - ms(loader.start)).toBeGreaterThanOrEqual(300);
        expect(loader.end).toBeLessThanOrEqual(sampler.start);
      } else {
        // A node whose start nobody saw says so: its span's start is unknown, not invented.
        const unmarked = nodes.filter((n) => n.attributes['podscope.timing'] !== 'observed' && n.attributes['podscope.start_unknown'] !== true);
        expect(unmarked.map((n) => n.name)).toEqual([]);
      }
    });

    it('says a node that raised with its exception, and the job’s error type', async () => {
      const { job, children, history } = await traced(failingGraph('traced failure on purpose'), 'error');
      expect(job.status.code).toBe(2);
      expect(job.attributes['error.type']).toBe('RuntimeError');
      expect(ms(job.end)).toBe(history.execution_error);
      const raised = named(children, 'PodscopeRaise');
      expect(raised.status).toEqual({ code: 2, message: 'traced failure on purpose' });
      expect(raised.events.find((e) => e.name === 'exception')?.attributes).toMatchObject({ 'exception.type': 'RuntimeError', 'exception.message': 'traced failure on purpose' });
    });
  });
}
