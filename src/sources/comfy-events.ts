/**
 * ComfyUI's websocket frames and HTTP answers, decoded once into typed events.
 *
 * Everything ComfyUI (or the tap node inside it) says about prompts passes through here: the job
 * reducer in state/ only ever sees these events, never raw JSON. Decoding never throws; what does
 * not have the documented shape is dropped (`null`), or kept with the parts that do.
 */
import { isRecord, type QueueItem } from '../shared/job-types.js';
import type { ComfyEvent, ErrorInfo, ExecutionEvent, HistoryRecord, ProgressNode } from '../shared/comfy-event-types.js';

export type { ComfyEvent, ErrorInfo, ExecutionEvent, HistoryRecord, ProgressNode } from '../shared/comfy-event-types.js';

function id(v: unknown): string | null {
  if (typeof v === 'string' && v.length > 0 && v.length <= 256) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function ids(v: unknown): string[] {
  return Array.isArray(v) ? v.map(id).filter((x): x is string => x !== null) : [];
}

function record(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

/** `[number, prompt_id, graph, extra_data, outputs_to_execute, …]` → QueueItem, or null. */
export function decodeQueueItem(raw: unknown): QueueItem | null {
  if (!Array.isArray(raw) || raw.length < 2) return null;
  const promptId = id(raw[1]);
  if (!promptId) return null;
  return {
    number: num(raw[0]),
    prompt_id: promptId,
    graph: record(raw[2]),
    extra_data: record(raw[3]),
    outputs_to_execute: ids(raw[4]),
  };
}

/** A /queue answer, or null when it lacks ComfyUI's two lists. */
export function decodeQueue(body: unknown): { type: 'queue'; running: QueueItem[]; pending: QueueItem[] } | null {
  if (!isRecord(body) || !Array.isArray(body.queue_running) || !Array.isArray(body.queue_pending)) return null;
  const items = (list: unknown[]) => list.map(decodeQueueItem).filter((i): i is QueueItem => i !== null);
  return { type: 'queue', running: items(body.queue_running), pending: items(body.queue_pending) };
}

function errorInfo(data: Record<string, unknown>): ErrorInfo {
  const tb = data.traceback;
  return {
    node_id: id(data.node_id),
    node_type: id(data.node_type),
    exception_type: id(data.exception_type),
    // ComfyUI appends "\n" and tips to str(ex): keep the text, drop trailing newlines.
    exception_message: typeof data.exception_message === 'string' ? data.exception_message.replace(/\n+$/, '') : '',
    traceback: Array.isArray(tb) ? tb.filter((t): t is string => typeof t === 'string') : typeof tb === 'string' ? [tb] : [],
  };
}

/** One execution_* message (a frame's or a history entry's), or null. */
function decodeExecution(type: string, data: Record<string, unknown>): ExecutionEvent | null {
  const promptId = id(data.prompt_id);
  if (!promptId) return null;
  const ts = num(data.timestamp);
  switch (type) {
    case 'execution_start':
      return { type, prompt_id: promptId, ts };
    case 'execution_cached':
      return { type, prompt_id: promptId, nodes: ids(data.nodes), ts };
    case 'execution_success':
      return { type, prompt_id: promptId, ts };
    case 'execution_error':
      // The ExecutionBlocker variant has no timestamp, a list for current_inputs, and does not stop the prompt.
      return { type, prompt_id: promptId, ts, executed: ids(data.executed), error: errorInfo(data), blocker: ts === null && Array.isArray(data.current_inputs) };
    case 'execution_interrupted':
      return { type, prompt_id: promptId, ts, executed: ids(data.executed), node_id: id(data.node_id), node_type: id(data.node_type) };
    default:
      return null;
  }
}

/** A /history/{id} (or /history) entry. */
export function decodeHistoryEntry(promptId: string, entry: unknown): HistoryRecord | null {
  if (!isRecord(entry)) return null;
  const status = record(entry.status);
  const messages: ExecutionEvent[] = [];
  for (const m of Array.isArray(status.messages) ? status.messages : []) {
    if (!Array.isArray(m) || typeof m[0] !== 'string' || !isRecord(m[1])) continue;
    const e = decodeExecution(m[0], { prompt_id: promptId, ...m[1] });
    if (e) messages.push(e);
  }
  const outputs: HistoryRecord['outputs'] = [];
  for (const [nodeId, ui] of Object.entries(record(entry.outputs))) if (isRecord(ui)) outputs.push({ node_id: nodeId, ui });
  return {
    prompt_id: promptId,
    item: decodeQueueItem(entry.prompt),
    messages,
    outputs,
    status_str: typeof status.status_str === 'string' ? status.status_str : null,
    completed: typeof status.completed === 'boolean' ? status.completed : null,
  };
}

/** A /history answer (`{prompt_id: entry, …}`), oldest first as ComfyUI keeps it. */
export function decodeHistory(body: unknown): HistoryRecord[] {
  if (!isRecord(body)) return [];
  const out: HistoryRecord[] = [];
  for (const [promptId, entry] of Object.entries(body)) {
    const r = id(promptId) ? decodeHistoryEntry(promptId, entry) : null;
    if (r) out.push(r);
  }
  return out;
}

function decodeProgressNodes(nodes: unknown): ProgressNode[] {
  const out: ProgressNode[] = [];
  for (const [key, raw] of Object.entries(record(nodes))) {
    if (!isRecord(raw)) continue;
    const nodeId = id(raw.display_node_id) ?? id(raw.node_id) ?? id(key);
    if (!nodeId) continue;
    const state = raw.state === 'running' || raw.state === 'finished' || raw.state === 'error' ? raw.state : null;
    out.push({ node_id: nodeId, value: num(raw.value), max: num(raw.max), state, parent_node_id: id(raw.parent_node_id) });
  }
  return out;
}

/** One JSON frame (`{type, data}`, already parsed by the websocket client) → an event, or null when it lacks what its type needs. */
export function decodeFrame(type: string, data: Record<string, unknown>): ComfyEvent | null {
  switch (type) {
    case 'status': {
      const exec = record(record(data.status).exec_info);
      return { type, queue_remaining: num(exec.queue_remaining) };
    }
    case 'executing': {
      const promptId = id(data.prompt_id);
      if (!promptId) return null; // the reconnect-resume frame has no prompt_id
      return { type, prompt_id: promptId, node: data.node === null ? null : (id(data.display_node) ?? id(data.node)) };
    }
    case 'executed': {
      const promptId = id(data.prompt_id);
      const node = id(data.display_node) ?? id(data.node);
      if (!promptId || !node) return null;
      return { type, prompt_id: promptId, node, output: isRecord(data.output) ? data.output : null };
    }
    case 'progress': {
      const promptId = id(data.prompt_id);
      const node = id(data.node);
      if (!promptId || !node) return null;
      return { type, prompt_id: promptId, node, value: num(data.value), max: num(data.max) };
    }
    case 'progress_state': {
      const promptId = id(data.prompt_id);
      if (!promptId) return null;
      return { type, prompt_id: promptId, nodes: decodeProgressNodes(data.nodes) };
    }
    case 'logs': {
      const entries = Array.isArray(data.entries) ? data.entries : [];
      return { type, entries: entries.filter((e): e is { t: unknown; m: string } => isRecord(e) && typeof e.m === 'string').map((e) => ({ t: typeof e.t === 'string' ? e.t : '', m: e.m })) };
    }
    case 'podscope.prompt_queued':
    case 'podscope.prompt_rejected': {
      const promptId = id(data.prompt_id);
      if (!promptId) return null;
      const base = { prompt_id: promptId, extra: record(data.extra), t: num(data.t) };
      return type === 'podscope.prompt_queued'
        ? { type: 'prompt_queued', ...base }
        : { type: 'prompt_rejected', ...base, error: isRecord(data.error) ? data.error : null, node_errors: record(data.node_errors) };
    }
    case 'podscope.prompt_start': {
      const promptId = id(data.prompt_id);
      if (!promptId) return null;
      return { type: 'prompt_start', prompt_id: promptId, extra: record(data.extra), graph: record(data.graph), outputs: ids(data.outputs), t: num(data.t) };
    }
    case 'podscope.node_start':
    case 'podscope.node_end': {
      const promptId = id(data.prompt_id);
      const node = id(data.display_node_id) ?? id(data.node_id);
      if (!promptId || !node) return null;
      const base = { prompt_id: promptId, node_id: node, class_type: id(data.class_type), t: num(data.t) };
      if (type === 'podscope.node_start') return { type: 'node_start', ...base };
      const outcome = data.outcome === 'success' || data.outcome === 'pending' ? data.outcome : 'error';
      return { type: 'node_end', ...base, outcome, peak_vram_bytes: num(data.peak_vram_bytes) };
    }
    case 'execution_start':
    case 'execution_cached':
    case 'execution_success':
    case 'execution_error':
    case 'execution_interrupted':
      // Without a prompt id it is dropped like any other malformed frame, not called unknown.
      return decodeExecution(type, data);
    default:
      return { type: 'other', name: type };
  }
}
