/**
 * /debug/* read endpoints. Each handler serializes a snapshot of the pod's state; none does I/O
 * (the download reads the one file asked for, through the service it is handed).
 */
import { Hono, type Context } from 'hono';
import type { PodReader } from '../../state/pod.js';
import type { StatusView } from '../../views/status.js';
import { memoryView } from '../../views/memory.js';
import { jobsView, workflowView, queueView } from '../../views/jobs.js';
import { ApiError } from '../errors.js';
import { formatParam, instanceParam, intParam, jobIdParam, parseQuery, pickInstance, querySpec } from '../query.js';
import { sendJson, sendText, sharedView } from '../respond.js';
import { renderJobs, renderMemory, renderQueue, renderStatus, renderWorkflow } from '../../shared/text-views.js';
import { z } from 'zod';
import { logsHandler } from './logs.js';
import { eventsHandler } from './events.js';
import { artifactsHandler, downloadHandler } from './artifacts.js';
import type { AppEnv } from '../env.js';
import type { HttpServices } from '../services.js';
import type { OpenStreams } from '../stream.js';

export const DEBUG_ENDPOINTS = [
  { path: '/debug/status', methods: ['GET'], description: 'pod status: GPU, current job, ComfyUI, queue, problems' },
  { path: '/debug/memory', methods: ['GET'], description: 'GPU, ComfyUI, host and podscope memory; ring buffer fill; VRAM timeline' },
  { path: '/debug/workflow', methods: ['GET'], description: 'the running (else latest) job node by node; ?job_id= for one job' },
  { path: '/debug/jobs', methods: ['GET'], description: 'the jobs remembered, newest first: outcome, duration, GPU-seconds, peak VRAM, the error in brief; ?status=&limit=' },
  { path: '/debug/queue', methods: ['GET'], description: 'running and pending prompts in execution order, secrets removed; recently rejected prompts' },
  { path: '/debug/logs', methods: ['GET'], description: 'log lines: ?lines=&level=&job_id=&source=&after=&q=&format=text&follow=1' },
  { path: '/debug/artifacts', methods: ['GET'], description: "a job's outputs (?job_id=), or the newest outputs of all jobs, each with a download url" },
  { path: '/debug/artifacts/file', methods: ['GET'], description: 'download one output: ?filename=&subfolder=&type=output|temp' },
  { path: '/debug/events', methods: ['GET'], description: 'server-sent events of what changes: jobs, nodes, progress, outcomes, rejections, problems, GPU samples; ?job_id=&types=, resumes with Last-Event-ID' },
] as const;

export const formatOnly = querySpec({ format: formatParam.optional() });
export const workflowQuery = querySpec({ job_id: jobIdParam.optional(), instance: instanceParam.optional() });
export const queueQuery = querySpec({ instance: instanceParam.optional() });
export const jobsQuery = querySpec({
  instance: instanceParam.optional(),
  status: z.enum(['queued', 'running', 'success', 'error', 'interrupted', 'lost', 'finished'], { message: 'must be one of queued, running, success, error, interrupted, lost, finished' }).optional(),
  limit: intParam(1, 100_000).optional(),
  format: formatParam.optional(),
});

/** Answers JSON, or the text view with ?format=text. */
function answer<T>(c: Context, state: PodReader, view: T, render: (v: T) => string): Response {
  const { format } = parseQuery(c, formatOnly);
  return format === 'text' ? sendText(c, state, render(view)) : sendJson(c, state, view);
}

/** /debug/memory's parameters: the timeline's length goes up to what the GPU timeline holds. */
export const memoryQueryOf = (gpuSamples: number) => querySpec({ points: intParam(1, gpuSamples).optional(), format: formatParam.optional() });

/** /debug/*; `status` gives the shared status snapshot (node:http's direct answers use it too). */
export function debugRoutes(state: PodReader, status: () => StatusView, services: HttpServices, open: OpenStreams): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ strict: false });
  const memory = sharedView(250, () => memoryView(state));
  app.get('/status', (c) => answer(c, state, status(), renderStatus));
  const memoryQuery = memoryQueryOf(state.config.gpuSamples);
  app.get('/memory', (c) => {
    // A longer timeline (the page's ten minutes) is built for the asker; the default is shared.
    const { points, format } = parseQuery(c, memoryQuery);
    const view = points === undefined ? memory() : memoryView(state, { timelinePoints: points });
    return format === 'text' ? sendText(c, state, renderMemory(view)) : sendJson(c, state, view);
  });

  app.get('/workflow', (c) => {
    const { job_id: jobId, instance } = parseQuery(c, workflowQuery);
    const one = instance === undefined ? undefined : pickInstance(state.instances, instance);
    // A job id is found on any instance (or only the named one); without one, the latest job.
    let found = jobId ? state.instances.findJob(jobId) : state.instances.latestJob();
    if (one) {
      const job = jobId ? one.tracker.get(jobId) : one.tracker.latest();
      found = job ? { comfy: one, job } : undefined;
    }
    if (!found) {
      if (jobId) {
        throw new ApiError(404, 'JOB_NOT_FOUND', `No job with id ${jobId} is known.`, {
          details: { job_id: jobId },
          help: `Both the platform job id (extra_data.${state.config.jobIdKey}) and ComfyUI's prompt_id are accepted; finished jobs are remembered up to PODSCOPE_JOB_HISTORY.`,
        });
      }
      throw new ApiError(404, 'NO_JOB', `No job has been seen since podscope started${one ? ` on ${one.name}` : ''}.`, { help: 'Jobs appear once ComfyUI queues a prompt.' });
    }
    return answer(c, state, workflowView(found.comfy, state.gpuUse, found.job, state.now()), renderWorkflow);
  });

  app.get('/jobs', (c) => {
    const q = parseQuery(c, jobsQuery);
    const instances = q.instance === undefined ? state.instances.all : [pickInstance(state.instances, q.instance)];
    const view = jobsView(instances, state.gpuUse, state.now(), { status: q.status, limit: q.limit ?? 50 });
    return q.format === 'text' ? sendText(c, state, renderJobs(view)) : sendJson(c, state, view);
  });

  app.get('/logs', logsHandler(state, open));
  app.get('/events', eventsHandler(state, open, services.eventStreams));
  app.get('/artifacts', artifactsHandler(state));
  app.get('/artifacts/file', downloadHandler(state, services.downloads));

  app.get('/queue', (c) => {
    const { instance } = parseQuery(c, queueQuery);
    const view = queueView(instance === undefined ? state.instances.all : [pickInstance(state.instances, instance)], state.now());
    return answer(c, state, view, renderQueue);
  });
  return app;
}
