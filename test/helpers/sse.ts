/** A server-sent events reader for tests: frames as they arrive, waited on by condition. */
import { until } from './wait.js';

export interface SseFrame {
  id?: string;
  event: string;
  data: string;
  /** `data` parsed as JSON when it is. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface SseStream {
  status: number;
  headers: Headers;
  frames: SseFrame[];
  comments: string[];
  /** Whether the server ended the stream. */
  ended: () => boolean;
  /** The first frame (from `from` on) that matches, once it has arrived. */
  waitFor(pred: (f: SseFrame) => boolean, ms?: number, from?: number): Promise<SseFrame>;
  close(): void;
}

/**
 * One SSE block (the text between blank lines) as a frame; null when it holds only comments,
 * which go to `comments`.
 */
export function parseSseBlock(block: string, comments: string[] = []): SseFrame | null {
  const f: Partial<SseFrame> & { data?: string } = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) comments.push(line.slice(1).trim());
    else if (line.startsWith('id: ')) f.id = line.slice(4);
    else if (line.startsWith('event: ')) f.event = line.slice(7);
    else if (line.startsWith('data: ')) f.data = f.data === undefined ? line.slice(6) : `${f.data}\n${line.slice(6)}`;
  }
  if (f.data === undefined && f.event === undefined) return null;
  let json: unknown = null;
  try {
    json = JSON.parse(f.data ?? '');
  } catch {
    /* not JSON */
  }
  return { id: f.id, event: f.event ?? 'message', data: f.data ?? '', json };
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal });
  const frames: SseFrame[] = [];
  const comments: string[] = [];
  let done = false;
  if (res.body) {
    void (async () => {
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for (;;) {
          const { done: end, value } = await reader.read();
          if (end) break;
          buf += decoder.decode(value, { stream: true });
          let cut: number;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const frame = parseSseBlock(buf.slice(0, cut), comments);
            buf = buf.slice(cut + 2);
            if (frame) frames.push(frame);
          }
        }
      } catch {
        /* aborted */
      }
      done = true;
    })();
  } else done = true;
  return {
    status: res.status,
    headers: res.headers,
    frames,
    comments,
    ended: () => done,
    waitFor: (pred, ms = 15_000, from = 0) => until(() => frames.slice(from).find(pred), ms, 10),
    close: () => ac.abort(),
  };
}
