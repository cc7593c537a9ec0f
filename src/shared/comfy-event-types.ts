/**
 * The typed events ComfyUI's frames and HTTP answers are decoded into (sources/comfy-events.ts) and
 * the job reducer (state/jobs.ts) takes.
 */
import type { QueueItem } from './job-types.js';

export interface ErrorInfo {
  node_id: string | null;
  node_type: string | null;
  exception_type: string | null;
  exception_message: string;
  traceback: string[];
}

export interface ProgressNode {
  node_id: string;
  value: number | null;
  max: number | null;
  state: 'running' | 'finished' | 'error' | null;
  /** Set for nodes inside a subgraph (their parent stands for them). */
  parent_node_id: string | null;
}

/** Execution events: from frames, from the tap, or replayed from a /history entry's messages. */
export type ExecutionEvent =
  | { type: 'execution_start'; prompt_id: string; ts: number | null }
  | { type: 'execution_cached'; prompt_id: string; nodes: string[]; ts: number | null }
  | { type: 'execution_success'; prompt_id: string; ts: number | null }
  | { type: 'execution_error'; prompt_id: string; ts: number | null; executed: string[]; error: ErrorInfo; blocker: boolean }
  | { type: 'execution_interrupted'; prompt_id: string; ts: number | null; executed: string[]; node_id: string | null; node_type: string | null };

export interface HistoryRecord {
  prompt_id: string;
  item: QueueItem | null;
  messages: ExecutionEvent[];
  outputs: Array<{ node_id: string; ui: Record<string, unknown> }>;
  status_str: string | null;
  completed: boolean | null;
}

export type ComfyEvent =
  | ExecutionEvent
  | { type: 'status'; queue_remaining: number | null }
  | { type: 'executing'; prompt_id: string; node: string | null }
  | { type: 'executed'; prompt_id: string; node: string; output: Record<string, unknown> | null }
  | { type: 'progress'; prompt_id: string; node: string; value: number | null; max: number | null }
  | { type: 'progress_state'; prompt_id: string; nodes: ProgressNode[] }
  | { type: 'logs'; entries: Array<{ t: string; m: string }> }
  // The tap node (comfyui/podscope_tap): ComfyUI's own clock in `t`.
  | { type: 'prompt_queued'; prompt_id: string; extra: Record<string, unknown>; t: number | null }
  | { type: 'prompt_rejected'; prompt_id: string; extra: Record<string, unknown>; t: number | null; error: Record<string, unknown> | null; node_errors: Record<string, unknown> }
  | { type: 'prompt_start'; prompt_id: string; extra: Record<string, unknown>; graph: Record<string, unknown>; outputs: string[]; t: number | null }
  | { type: 'node_start'; prompt_id: string; node_id: string; class_type: string | null; t: number | null }
  | { type: 'node_end'; prompt_id: string; node_id: string; class_type: string | null; t: number | null; outcome: 'success' | 'error' | 'pending'; peak_vram_bytes: number | null }
  // /queue and /history answers.
  | { type: 'queue'; running: QueueItem[]; pending: QueueItem[] }
  | { type: 'history'; record: HistoryRecord }
  | { type: 'other'; name: string };

