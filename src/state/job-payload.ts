/**
 * What a prompt's payload says, read safely: the W3C traceparent in its extra_data, extra_data
 * without secrets, and ComfyUI's validation verdict as sentences.
 */
import { REDACTED, isSecretName } from '../secrets.js';
import { isRecord } from '../shared/job-types.js';
import type { TraceParent } from '../shared/traces.js';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:$|-)/;

/** A W3C traceparent's parent; null when invalid (version ff, an all-zero id, a bad shape). */
export function parseTraceParent(header: unknown): TraceParent | null {
  const m = typeof header === 'string' ? TRACEPARENT.exec(header.trim()) : null;
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return null;
  return { trace_id: m[2]!, span_id: m[3]!, flags: parseInt(m[4]!, 16) };
}

/** extra_data without secrets (api_key_comfy_org, auth_token_comfy_org, anything named like one) and without the UI's workflow blob. */
export function redactExtra(extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) {
    if (k === 'extra_pnginfo') out[k] = '[omitted]';
    else if (isSecretName(k)) out[k] = REDACTED;
    else if (typeof v === 'string') out[k] = v.length > 200 ? `${v.slice(0, 200)}…` : v;
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
    else out[k] = '[object]';
  }
  return out;
}

/** A non-empty string, or a finite number as one; else null. */
export function text(v: unknown): string | null {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/**
 * ComfyUI's validation verdict as sentences: one per failing input (`KSampler 3: Value smaller
 * than min: steps: -1`), else the prompt-level message.
 */
export function rejectionReasons(error: Record<string, unknown> | null, nodeErrors: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [nodeId, v] of Object.entries(nodeErrors)) {
    if (!isRecord(v)) continue;
    const who = `${text(v.class_type) ?? 'node'} ${nodeId}`;
    for (const err of Array.isArray(v.errors) ? v.errors : []) {
      if (!isRecord(err)) continue;
      const message = text(err.message) ?? text(err.type) ?? 'invalid';
      const details = text(err.details);
      out.push(`${who}: ${message}${details ? `: ${details}` : ''}`.slice(0, 500));
    }
  }
  if (out.length === 0 && error) out.push((text(error.message) ?? text(error.type) ?? 'ComfyUI rejected the prompt').slice(0, 500));
  return out.slice(0, 20);
}
