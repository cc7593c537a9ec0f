/**
 * /debug/logs (contract 2.5): the newest lines at a level or more severe, filtered by job, source,
 * text and seq cursor; `format=text` for grep; `follow=1` streams new lines (SSE, or chunked text)
 * with a heartbeat well inside RunPod's 100 s idle cut. A reader too slow to keep up is dropped.
 */
import { z } from 'zod';
import type { Context } from 'hono';
import type { PodReader } from '../../state/pod.js';
import type { LogRecord } from '../../state/logs.js';
import type { RingEntry } from '../../state/ring-buffer.js';
import { LEVELS } from '../../shared/log-levels.js';
import { formatParam, instanceParam, intParam, jobIdParam, parseQuery, pickInstance, querySpec } from '../query.js';
import { sendJson, sendText } from '../respond.js';
import { streamResponse, type OpenStreams } from '../stream.js';
import { ApiError } from '../errors.js';
import { iso } from '../../format.js';

function formatText(e: RingEntry<LogRecord>): string {
  const r = e.value;
  return `${iso(r.ts)} ${r.level.toUpperCase().padEnd(5)} ${r.instance === null ? r.source : `${r.source}[${r.instance}]`} ${r.job_id ?? '-'} ${r.message}\n`;
}

function toJson(e: RingEntry<LogRecord>) {
  const r = e.value;
  return { seq: e.seq, ts: iso(r.ts), level: r.level, source: r.source, ...(r.instance === null ? {} : { instance: r.instance }), message: r.message, job_id: r.job_id };
}

/** /debug/logs's parameters: `lines` goes up to what the log buffer holds. */
export function logsQuery(capacity: number) {
  return querySpec({
      lines: intParam(1, capacity).optional(),
      level: z.enum(LEVELS as [string, ...string[]], { message: `must be one of ${LEVELS.join(', ')}` }).optional(),
      job_id: jobIdParam.optional(),
      source: z.enum(['comfyui', 'podscope'], { message: 'must be comfyui or podscope' }).optional(),
      instance: instanceParam.optional(),
      after: z
        .string()
        .regex(/^\d{1,15}$/, { message: 'must be a seq number (a non-negative integer)' })
        .transform(Number)
        .optional(),
      q: z.string().min(1, { message: 'must not be empty' }).max(200, { message: 'must be at most 200 characters' }).optional(),
      format: formatParam.optional(),
      follow: z.enum(['0', '1', 'true', 'false'], { message: 'must be 0 or 1' }).optional(),
  });
}

export function logsHandler(state: PodReader, open: OpenStreams) {
  const spec = logsQuery(state.config.logLines);
  return (c: Context) => {
    const store = state.logs;
    const q = parseQuery(c, spec);
    const instance = q.instance === undefined ? undefined : pickInstance(state.instances, q.instance).name;
    let jobIds: Set<string> | undefined;
    if (q.job_id) {
      // Either id of a job is accepted; lines carry the platform job id (the prompt_id before it was known).
      const job = instance === undefined ? state.instances.findJob(q.job_id)?.job : state.instances.byName(instance)!.tracker.get(q.job_id);
      jobIds = new Set([q.job_id, ...(job ? [job.job_id, job.prompt_id] : [])]);
      // Unknown everywhere, as /debug/workflow and /debug/artifacts say: not a job with no lines.
      if (!job && store.query({ lines: 1, jobIds }).length === 0) {
        throw new ApiError(404, 'JOB_NOT_FOUND', `No job with id ${q.job_id} is known, and no log line carries it.`, { details: { job_id: q.job_id } });
      }
    }
    const filter = { level: q.level as LogRecord['level'] | undefined, jobIds, source: q.source, instance, q: q.q };
    const entries = store.query({ lines: q.lines ?? 100, after: q.after, ...filter });
    const text = q.format === 'text';
    if (q.follow === '1' || q.follow === 'true') return follow(c, state, open, entries, store.matcher(filter), text);
    if (text) return sendText(c, state, entries.map(formatText).join(''));
    return sendJson(c, state, { lines: entries.map(toJson), buffered: store.ring.size, dropped: store.ring.dropped, sampled_at: iso(state.now()) });
  };
}

function follow(c: Context, state: PodReader, open: OpenStreams, initial: RingEntry<LogRecord>[], match: (r: LogRecord) => boolean, text: boolean): Response {
  const store = state.logs;
  const frame = (e: RingEntry<LogRecord>) => (text ? formatText(e) : `id: ${e.seq}\ndata: ${JSON.stringify(toJson(e))}\n\n`);
  return streamResponse(c, state, {
    open,
    contentType: text ? 'text/plain; charset=utf-8' : 'text/event-stream; charset=utf-8',
    initial: [...(text ? [] : [': podscope log stream\n\n']), ...initial.map(frame)],
    subscribe: (send) =>
      store.subscribe((e) => {
        if (match(e.value)) send(frame(e));
      }),
    heartbeat: text ? '\n' : ': heartbeat\n\n',
    dropped: text ? '# podscope: dropped, reader too slow\n' : 'event: dropped\ndata: reader too slow\n\n',
    stopping: text ? '' : 'event: end\ndata: podscope is stopping\n\n',
  });
}
