/**
 * Pure functions that turn raw ComfyUI output into log records (protocol section 3): ANSI codes
 * stripped, carriage-return rewrites collapsed to the latest state, tracebacks kept whole, a level
 * for every line, and the signals podscope acts on (OOM, prompt end, validation failure, custom
 * node import failure, tqdm steps).
 */
import { isOomText, type Level } from '../shared/log-levels.js';

export { LEVELS, LEVEL_RANK, isOomText, type Level } from '../shared/log-levels.js';


// CSI sequences, OSC sequences and lone escapes.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
// Control characters other than tab, newline and carriage return.
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '').replace(CONTROL, '');
}

const MANAGER_PREFIX = /^\[(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{3})\] /;

/** ComfyUI-Manager's file prefix `[YYYY-MM-DD HH:MM:SS.mmm] ` → its time (local) and the rest. */
export function stripManagerPrefix(line: string): { ts: number | null; text: string } {
  const m = MANAGER_PREFIX.exec(line);
  if (!m) return { ts: null, text: line };
  const ts = new Date(`${m[1]}T${m[2]}`).getTime();
  return { ts: Number.isFinite(ts) ? ts : null, text: line.slice(m[0].length) };
}

const LEVEL_PREFIX = /^\[(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\] /;

/** A level for a ComfyUI line (its own format carries none). */
export function detectLevel(text: string): { level: Level; text: string } {
  const p = LEVEL_PREFIX.exec(text);
  if (p) {
    const name = p[1]!;
    const level: Level = name === 'WARNING' ? 'warn' : name === 'CRITICAL' ? 'fatal' : (name.toLowerCase() as Level);
    return { level, text: text.slice(p[0].length) };
  }
  if (/^!!! Exception during processing/.test(text) || /^Traceback \(most recent call last\)/.test(text) || isOomText(text)) return { level: 'error', text };
  if (/^\s*(Error|Exception)\b/.test(text) || /^[\w.]*(Error|Exception): /.test(text) || /\(IMPORT FAILED\)/.test(text) || /^Cannot import /.test(text)) {
    return { level: 'error', text };
  }
  // Rejections, and what ComfyUI could not set up but starts without (its own API nodes that did
  // not import, a database or frontend package it could not check).
  if (/^invalid prompt:|^Failed to |^IMPORT FAILED: /.test(text)) return { level: 'warn', text };
  if (/\bwarn(ing)?\b/i.test(text) || /DeprecationWarning|UserWarning|FutureWarning/.test(text)) return { level: 'warn', text };
  return { level: 'info', text };
}

/** A tqdm bar: ` 50%|█████     | 2/4 [00:01<00:01,  1.95it/s]`. */
export function parseTqdm(text: string): { value: number; total: number } | null {
  const m = /(\d+)%\|[^|]*\| (\d+)\/(\d+) \[/.exec(text);
  if (!m) return null;
  const value = Number(m[2]);
  const total = Number(m[3]);
  return total > 0 && value <= total ? { value, total } : null;
}

/** `Prompt executed in 12.34 seconds` or `Prompt executed in 00:12:34`. */
export function isPromptEnd(text: string): boolean {
  return /^Prompt executed in /.test(text);
}

/** `   0.0 seconds (IMPORT FAILED): /comfyui/custom_nodes/Y` → the node path. */
export function importFailure(text: string): string | null {
  const m = /^\s*[\d.]+ seconds \(IMPORT FAILED\): (.+)$/.exec(text);
  return m ? m[1]!.trim() : null;
}

/**
 * Turns a stream of writes into complete lines. A `\r` restarts the current line (tqdm redraws),
 * so what is kept is the bar's latest state; a line longer than `maxLine` is cut with a marker and
 * the rest of it is skipped until its newline.
 */
export class LineAssembler {
  private current = '';
  private overflow = 0;

  constructor(private readonly maxLine: number) {}

  /** Feeds a chunk; returns the lines it completed. */
  push(chunk: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk.charCodeAt(i);
      if (ch === 10 /* \n */) {
        this.append(chunk.slice(start, i));
        out.push(this.take());
        start = i + 1;
      } else if (ch === 13 /* \r */) {
        this.append(chunk.slice(start, i));
        // `\r\n` ends the line; a lone `\r` starts the line over.
        if (chunk.charCodeAt(i + 1) !== 10) {
          if (this.current.trim() !== '') this.lastRewritten = this.current;
          this.current = '';
          this.overflow = 0;
        }
        start = i + 1;
      }
    }
    this.append(chunk.slice(start));
    return out;
  }

  /** The latest state of a line still open (a bar being redrawn), if any. */
  lastRewritten: string | null = null;

  get pending(): string {
    return this.current;
  }

  /** Ends the open line (idle timeout, end of stream). */
  flush(): string | null {
    if (this.current === '' && this.overflow === 0) return null;
    return this.take();
  }

  private append(s: string): void {
    if (s === '') return;
    const room = this.maxLine - this.current.length;
    if (room <= 0) {
      this.overflow += s.length;
      return;
    }
    if (s.length > room) {
      this.current += s.slice(0, room);
      this.overflow += s.length - room;
    } else {
      this.current += s;
    }
  }

  private take(): string {
    const line = this.overflow > 0 ? `${this.current}… [truncated ${this.overflow} characters]` : this.current;
    this.current = '';
    this.overflow = 0;
    this.lastRewritten = null;
    return line;
  }
}

/**
 * Groups lines into records: a Python traceback (its indented frames and the final exception line)
 * becomes one record; every other line is a record of its own.
 */
export class RecordGrouper {
  private group: string[] | null = null;

  push(line: string): string[] {
    if (this.group) {
      if (/^\s/.test(line) || line === '' || /^During handling of the above exception|^The above exception was the direct cause/.test(line)) {
        this.group.push(line);
        if (this.group.length > 400) return [this.close()];
        return [];
      }
      if (/^Traceback \(most recent call last\)/.test(line)) {
        const done = this.close();
        this.group = [line];
        return [done];
      }
      this.group.push(line);
      return [this.close()];
    }
    if (/^Traceback \(most recent call last\)/.test(line)) {
      this.group = [line];
      return [];
    }
    return [line];
  }

  flush(): string | null {
    return this.group ? this.close() : null;
  }

  get open(): boolean {
    return this.group !== null;
  }

  private close(): string {
    const text = this.group!.join('\n').replace(/\n+$/, '');
    this.group = null;
    return text;
  }
}
