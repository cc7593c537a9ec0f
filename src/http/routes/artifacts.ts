/**
 * /debug/artifacts (contract 2.8) and the download behind each artifact's `url`.
 *
 * The download reads one file (the only route that touches the disk, as a download must) through
 * the download service it is handed (collectors/artifacts.ts): from ComfyUI's output or temp
 * directory when podscope knows it, else through ComfyUI's /view. Nothing outside those
 * directories can be reached: see sources/artifact-files.ts.
 */
import { z } from 'zod';
import type { Context } from 'hono';
import type { PodReader } from '../../state/pod.js';
import { artifactsFromUi, type Artifact, type ArtifactFiles } from '../../state/artifacts.js';
import { iso } from '../../format.js';
import { outputDirFromArgv } from '../../shared/comfy-argv.js';
import { renderArtifacts } from '../../shared/text-views.js';
import { ApiError } from '../errors.js';
import { formatParam, instanceParam, intParam, jobIdParam, parseQuery, pickInstance, querySpec } from '../query.js';
import { responseHeaders, sendJson, sendText } from '../respond.js';

export function artifactUrl(a: { instance: string; filename: string; subfolder: string; type: string }): string {
  const q = new URLSearchParams({ filename: a.filename, subfolder: a.subfolder, type: a.type, instance: a.instance });
  return `/debug/artifacts/file?${q}`;
}

function present(a: Artifact) {
  return {
    instance: a.instance,
    job_id: a.job_id,
    prompt_id: a.prompt_id,
    node_id: a.node_id,
    filename: a.filename,
    subfolder: a.subfolder,
    type: a.type,
    kind: a.kind,
    format: a.format,
    url: artifactUrl(a),
    size_bytes: a.size_bytes,
    exists: a.exists,
    mtime: a.mtime,
    from_cache: a.from_cache,
    produced_by_job: a.produced_by_job,
    wiped: a.wiped,
  };
}

export const listQuery = querySpec({
  job_id: jobIdParam.optional(),
  instance: instanceParam.optional(),
  limit: intParam(1, 1000).optional(),
  format: formatParam.optional(),
});

export const fileQuery = querySpec({
  filename: z.string({ message: 'is required' }).min(1, { message: 'must not be empty' }).max(1024, { message: 'must be at most 1024 characters' }),
  subfolder: z.string().max(1024, { message: 'must be at most 1024 characters' }).optional(),
  type: z.enum(['output', 'temp'], { message: 'must be output or temp' }).optional(),
  instance: instanceParam.optional(),
});

export function artifactsHandler(state: PodReader) {
  return (c: Context) => {
    const q = parseQuery(c, listQuery);
    const ledger = state.artifacts;
    const one = q.instance === undefined ? undefined : pickInstance(state.instances, q.instance);
    let items: ReturnType<typeof present>[];
    if (q.job_id) {
      const job = one ? one.tracker.get(q.job_id) : state.instances.findJob(q.job_id)?.job;
      // A known job is one prompt (the newest carrying a retried job id): only its outputs.
      const mine = job ? (a: Artifact) => a.prompt_id === job.prompt_id : (a: Artifact) => (a.job_id === q.job_id || a.prompt_id === q.job_id) && (!one || a.instance === one.name);
      const recorded = ledger.ring.select(mine, Number.POSITIVE_INFINITY).map((e) => e.value);
      if (!job && recorded.length === 0) {
        throw new ApiError(404, 'JOB_NOT_FOUND', `No job with id ${q.job_id} is known.`, { details: { job_id: q.job_id } });
      }
      if (recorded.length > 0) {
        items = recorded.map(present);
      } else {
        // Still running (outputs seen in executed frames): what it has reported so far.
        items = job!.outputs.flatMap((o) =>
          artifactsFromUi(o.ui).map((a) =>
            present({ ...a, instance: job!.instance, job_id: job!.job_id, prompt_id: job!.prompt_id, node_id: o.node_id, from_cache: o.cached, produced_by_job: null, wiped: false, size_bytes: null, exists: null, mtime: null, at: 0 }),
          ),
        );
      }
    } else {
      // The latest first: that is what people look for.
      items = ledger.newest(q.limit ?? 100, one?.name).reverse().map(present);
    }
    // Whether podscope reads the outputs' directory itself (given, or from ComfyUI's command line) for every instance asked about.
    const outputDirKnown = (one ? [one] : state.instances.all).every((c) => state.config.instances.find((i) => i.name === c.name)?.outputDir !== undefined || outputDirFromArgv(c.argv) !== null);
    const body = { job_id: q.job_id ?? null, artifacts: items, output_dir_known: outputDirKnown, sampled_at: iso(state.now()) };
    return q.format === 'text' ? sendText(c, state, renderArtifacts(body)) : sendJson(c, state, body);
  };
}

/** The download behind each artifact's url; `files` opens the file (null: downloads are not served). */
export function downloadHandler(state: PodReader, files: ArtifactFiles | null) {
  return async (c: Context) => {
    const q = parseQuery(c, fileQuery);
    const subfolder = q.subfolder ?? '';
    const type = q.type ?? 'output';
    // Without `instance`, the first (the single-instance contract's URLs carry none).
    const instance = q.instance === undefined ? state.comfy : pickInstance(state.instances, q.instance);
    if (!files) throw new ApiError(503, 'UNAVAILABLE', 'Downloads are not available.');
    const file = await files.open(instance.name, type, subfolder, q.filename);
    switch (file.kind) {
      case 'refused':
        throw new ApiError(400, 'INVALID_PARAMETER', `${file.problem}.`, { details: { parameter: file.problem.split(' ')[0], problem: file.problem } });
      case 'missing':
        throw new ApiError(404, 'NOT_FOUND', `No ${type} file ${subfolder ? `${subfolder}/` : ''}${q.filename}.`);
      case 'unavailable':
        throw new ApiError(file.status, file.status === 400 ? 'INVALID_PARAMETER' : 'UNAVAILABLE', file.message);
      case 'file':
        return c.body(file.body, 200, responseHeaders(c, {
          'Content-Type': file.contentType,
          'Content-Disposition': `inline; filename="${q.filename.replace(/[^\w.\- ]/g, '_')}"`,
          'X-Content-Type-Options': 'nosniff',
          'Cache-Control': 'no-store',
          ...(file.size !== null ? { 'Content-Length': String(file.size) } : {}),
        }));
    }
  };
}
