/**
 * /debug/events: a server-sent event stream of what changes on the pod (jobs, nodes, progress,
 * outcomes, rejections, problems, GPU samples). Each event has an id; a client that reconnects
 * with `Last-Event-ID` is sent every event it missed that the replay buffer still holds, and is
 * told when some are gone. `?job_id=` keeps one job's events, `?types=` some types.
 */
import { z } from 'zod';
import type { Context } from 'hono';
import type { PodReader } from '../../state/pod.js';
import { EVENT_TYPES, type EventType, type PodEvent, type StreamCounts } from '../../state/events.js';
import { header } from '../env.js';
import { instanceParam, jobIdParam, parseQuery, pickInstance, querySpec } from '../query.js';
import { streamResponse, type OpenStreams } from '../stream.js';

const typesParam = z
  .string()
  .max(400, { message: 'must be at most 400 characters' })
  .transform((s) => s.split(',').map((t) => t.trim()).filter((t) => t !== ''))
  .pipe(
    z
      .array(z.enum(EVENT_TYPES, { message: `must be a comma-separated list of ${EVENT_TYPES.join(', ')}` }))
      .min(1, { message: `must name at least one of ${EVENT_TYPES.join(', ')}` }),
  );

export const eventsQuery = querySpec({
  job_id: jobIdParam.optional(),
  instance: instanceParam.optional(),
  types: typesParam.optional(),
  last_event_id: z.string().max(100, { message: 'must be at most 100 characters' }).optional(),
});

/** `counts`: the streams served, which the route keeps and metrics read. */
export function eventsHandler(state: PodReader, open: OpenStreams, counts: StreamCounts) {
  return (c: Context) => {
    const q = parseQuery(c, eventsQuery);
    const journal = state.events;
    const types = q.types ? new Set<EventType>(q.types) : null;
    // Events before the platform id was read carry the prompt id as their job id: both are followed.
    const instance = q.instance === undefined ? undefined : pickInstance(state.instances, q.instance).name;
    let promptId = q.job_id ? (state.instances.findJob(q.job_id)?.job.prompt_id ?? null) : null;
    const wanted = (e: PodEvent): boolean => {
      if (types && !types.has(e.type)) return false;
      if (instance !== undefined && e.instance !== instance) return false;
      if (!q.job_id) return true;
      if (e.job_id === q.job_id && e.prompt_id) promptId = e.prompt_id;
      return e.job_id === q.job_id || e.prompt_id === q.job_id || (promptId !== null && e.prompt_id === promptId);
    };
    const resume = journal.resume(header(c as never, 'last-event-id') ?? q.last_event_id);
    const initial = [`retry: 3000\n: podscope events ${journal.boot}\n\n`];
    if (resume.kind === 'gap') initial.push(`event: gap\ndata: ${JSON.stringify({ reason: resume.reason, lost: resume.lost, oldest_id: journal.ring.size > 0 ? journal.id(journal.ring.firstSeq) : null })}\n\n`);
    if (resume.kind !== 'fresh') for (const e of resume.entries) if (wanted(e.value)) initial.push(e.value.frame);
    return streamResponse(c, state, {
      open,
      contentType: 'text/event-stream; charset=utf-8',
      initial,
      subscribe: (send) =>
        journal.subscribe((e) => {
          if (wanted(e.value)) send(e.value.frame);
        }),
      heartbeat: ': heartbeat\n\n',
      dropped: 'event: dropped\ndata: {"reason":"reader too slow: reconnect with Last-Event-ID to resume"}\n\n',
      stopping: 'event: end\ndata: {"reason":"podscope is stopping"}\n\n',
      onDrop: () => counts.dropped++,
      onStart: () => counts.open++,
      onEnd: () => counts.open--,
    });
  };
}
