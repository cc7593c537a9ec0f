/**
 * How ComfyUI's answers feed the job tracker: the ComfyUI collector's polls and the replay of a
 * recording (tests) go through these same functions, so a recording replays exactly what podscope
 * did with it.
 */
import { decodeFrame, decodeHistory, decodeHistoryEntry, decodeQueue } from '../sources/comfy-events.js';
import { isRecord, type JobTracker } from '../state/jobs.js';

/** One raw input from ComfyUI, as the conformance suite records it (JSONL). */
export type RawInput = { t: number; kind: 'frame'; type: string; data: Record<string, unknown> } | { t: number; kind: 'http'; path: string; body: unknown };

/** A /queue answer. Returns the prompt ids that left the queue unfinished, or null when the answer is not a queue. */
export function applyQueueAnswer(tracker: JobTracker, now: number, body: unknown): string[] | null {
  const queue = decodeQueue(body);
  return queue ? tracker.applyQueue(now, queue.running, queue.pending) : null;
}

/**
 * A /history/{id} answer. Its entry is ComfyUI's record; without one, an unfinished job is missing
 * (lost at the second miss, at once after a restart) and a finished one will not be asked again.
 */
export function applyHistoryEntryAnswer(tracker: JobTracker, now: number, promptId: string, body: unknown, opts: { restarted?: boolean; silent?: boolean } = {}): void {
  const record = isRecord(body) ? decodeHistoryEntry(promptId, body[promptId]) : null;
  if (record) {
    tracker.applyHistory(now, record, { silent: opts.silent });
  } else if (tracker.isFinished(promptId)) {
    tracker.historyUnavailable(promptId);
  } else {
    const reason = opts.restarted
      ? 'ComfyUI restarted while this job was queued or running; it vanished without an outcome'
      : 'the job left the queue without an entry in history (deleted, or ComfyUI restarted)';
    tracker.applyMissing(now, promptId, reason, { atOnce: opts.restarted });
  }
}

/** A /history?max_items=N answer: prompts podscope has no outcome for yet. */
export function applyHistoryListAnswer(tracker: JobTracker, now: number, body: unknown, silent: boolean): void {
  for (const record of decodeHistory(body)) {
    if (!tracker.isFinished(record.prompt_id)) tracker.applyHistory(now, record, { silent });
  }
}

/**
 * Replays a recording into a tracker, each input at its recorded time; `after` runs after each
 * input, as the live collectors' work runs between two arrivals.
 */
export function replay(tracker: JobTracker, inputs: readonly RawInput[], after?: (input: RawInput) => void): void {
  let listed = false;
  for (const input of inputs) {
    applyInput(input);
    after?.(input);
  }

  function applyInput(input: RawInput): void {
    if (input.kind === 'frame') {
      const event = decodeFrame(input.type, input.data);
      if (event) tracker.apply(input.t, event);
      return;
    }
    const path = input.path.split('?')[0]!;
    if (path === '/queue') {
      applyQueueAnswer(tracker, input.t, input.body);
    } else if (path === '/history') {
      applyHistoryListAnswer(tracker, input.t, input.body, !listed);
      listed = true;
    } else if (path.startsWith('/history/')) {
      applyHistoryEntryAnswer(tracker, input.t, decodeURIComponent(path.slice('/history/'.length)), input.body);
    }
  }
}
