/**
 * The simulated ComfyUI's websockets and log stream, with ComfyUI's delivery rules
 * (docs/comfyui-protocol.md 1.2): an event with a sid goes to that socket only and is dropped when
 * it is not connected; a sid null broadcasts; a second socket with the same clientId silently takes
 * over its routing (ComfyUI#16010); `logs` go only to subscribed ids with an open socket, and an
 * id without one is unsubscribed at flush time.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';

/** Python's `datetime.now().isoformat()`: local time, microseconds, no zone (as ComfyUI stamps log entries). */
function localIso(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

export class SimSockets {
  /** Open sockets by clientId. */
  readonly byId = new Map<string, WebSocket>();
  /** The clientIds subscribed to the log stream (PATCH /internal/logs/subscribe). */
  readonly subscribed = new Set<string>();
  /** Every clientId any socket connected with, in order. */
  readonly connectedClientIds: string[] = [];
  /** What /internal/logs/raw answers: the newest 300 entries, a redrawn tqdm bar replacing its line. */
  logBuffer: Array<{ t: string; m: string }> = [];
  private silent = false;
  private lastTqdmOpen = false;

  constructor(
    private readonly opts: {
      /** ComfyUI's queue_remaining, for the status frame a new socket gets. */
      queueRemaining: () => number;
      /** Called with every log write (to feed a log file, say). */
      onLog?: (line: string) => void;
    },
  ) {}

  /** A socket that connected with `?clientId=requested` (or none: ComfyUI makes one up). */
  accept(ws: WebSocket, requested: string | null): void {
    const sid = requested && requested.length > 0 ? requested : randomUUID().replace(/-/g, '');
    this.connectedClientIds.push(sid);
    // Same id again: the new socket takes over routing silently (ComfyUI#16010).
    this.byId.set(sid, ws);
    ws.on('close', () => {
      if (this.byId.get(sid) === ws) this.byId.delete(sid);
    });
    ws.on('error', () => undefined);
    ws.on('message', () => undefined); // feature_flags and the rest are ignored
    ws.send(JSON.stringify({ type: 'status', data: { status: { exec_info: { queue_remaining: this.opts.queueRemaining() } }, sid } }));
  }

  /** ComfyUI's send_sync: sid null broadcasts; a sid reaches that socket only, or nobody. */
  send(type: string, data: Record<string, unknown>, sid: string | null): void {
    if (this.silent) return;
    const text = JSON.stringify({ type, data });
    if (sid === null) {
      for (const ws of this.byId.values()) this.write(ws, text);
    } else {
      const ws = this.byId.get(sid);
      if (ws) this.write(ws, text);
    }
  }

  sendBinary(buf: Buffer, sid: string | null): void {
    if (this.silent) return;
    if (sid === null) for (const ws of this.byId.values()) this.write(ws, buf);
    else {
      const ws = this.byId.get(sid);
      if (ws) this.write(ws, buf);
    }
  }

  private write(ws: WebSocket, payload: string | Buffer): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(payload);
  }

  /** Send a raw frame to every socket (fault injection: unknown types, garbage, huge frames). */
  broadcastRaw(payload: string | Buffer): void {
    for (const ws of this.byId.values()) this.write(ws, payload);
  }

  /** Every websocket goes silent without closing (no frames, no pongs), like a frozen process. */
  silence(on = true): void {
    this.silent = on;
    for (const ws of this.byId.values()) {
      const raw = (ws as unknown as { _socket?: Socket })._socket;
      if (on) raw?.pause();
      else raw?.resume();
    }
  }

  /** The clientIds subscribed to the log stream (PATCH /internal/logs/subscribe). */
  subscriberIds(): string[] {
    return [...this.subscribed];
  }

  /** One write to stdout/stderr as ComfyUI's LogInterceptor sees it. */
  log(m: string): void {
    const entry = { t: localIso(new Date()), m };
    if (m.startsWith('\r') && this.lastTqdmOpen && this.logBuffer.length > 0) this.logBuffer[this.logBuffer.length - 1] = entry;
    else this.logBuffer.push(entry);
    this.lastTqdmOpen = !m.endsWith('\n');
    if (this.logBuffer.length > 300) this.logBuffer.shift();
    this.opts.onLog?.(m);
    for (const id of [...this.subscribed]) {
      const ws = this.byId.get(id);
      if (!ws) {
        this.subscribed.delete(id); // auto-unsubscribed: no open socket at flush time
        continue;
      }
      if (!this.silent) this.write(ws, JSON.stringify({ type: 'logs', data: { entries: [entry], size: null } }));
    }
  }

  /** Closes every socket at once (the process died). */
  terminateAll(): void {
    for (const ws of this.byId.values()) ws.terminate();
    this.byId.clear();
  }

  /** A restart: no subscriptions, an empty log buffer. */
  reset(): void {
    this.subscribed.clear();
    this.logBuffer = [];
  }
}
