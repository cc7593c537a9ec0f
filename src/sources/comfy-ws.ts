/**
 * ComfyUI's websocket, seen by a client under its own fresh clientId.
 *
 * ComfyUI never pings, so this client does: a socket that stops answering pings is torn down and
 * reconnected with capped, jittered exponential backoff. Frames are handed over as soon as they
 * arrive (a slow reader would stall ComfyUI's delivery to every client). A frame larger than
 * `maxPayload` closes the socket (ws enforces it) and is counted; nothing a frame holds can crash
 * the client.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

export type ComfyFrame =
  | { kind: 'json'; type: string; data: Record<string, unknown> }
  | { kind: 'binary'; event: number; bytes: number; preview?: { format: string; meta: Record<string, unknown> | null; image: Buffer }; text?: { nodeId: string; text: string } }
  | { kind: 'malformed'; reason: string };

export interface ComfyWsEvents {
  onOpen(clientId: string): void;
  onFrame(frame: ComfyFrame): void;
  onClose(reason: string): void;
}

export interface ComfyWsOptions {
  url: string;
  pingIntervalMs: number;
  maxPayloadBytes: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  events: ComfyWsEvents;
  random?: () => number;
}

/** `http://host:8188/base` → `ws://host:8188/base/ws?clientId=…`. */
export function wsUrlFor(httpUrl: string, clientId: string): string {
  const u = new URL(httpUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/ws`;
  u.search = `?clientId=${encodeURIComponent(clientId)}`;
  return u.toString();
}

/** Decodes one binary frame (protocol section 1.4). */
export function parseBinaryFrame(buf: Buffer): ComfyFrame {
  if (buf.length < 4) return { kind: 'malformed', reason: 'binary frame shorter than its 4-byte type' };
  const event = buf.readUInt32BE(0);
  if (event === 1 && buf.length >= 8) {
    const fmt = buf.readUInt32BE(4);
    return { kind: 'binary', event, bytes: buf.length, preview: { format: fmt === 2 ? 'image/png' : 'image/jpeg', meta: null, image: buf.subarray(8) } };
  }
  if (event === 3 && buf.length >= 8) {
    const len = buf.readUInt32BE(4);
    if (8 + len > buf.length) return { kind: 'malformed', reason: 'text frame node id runs past the end' };
    return { kind: 'binary', event, bytes: buf.length, text: { nodeId: buf.subarray(8, 8 + len).toString('utf8'), text: buf.subarray(8 + len).toString('utf8') } };
  }
  if (event === 4 && buf.length >= 8) {
    const len = buf.readUInt32BE(4);
    if (8 + len > buf.length) return { kind: 'malformed', reason: 'preview metadata runs past the end' };
    let meta: Record<string, unknown> | null = null;
    try {
      const parsed: unknown = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) meta = parsed as Record<string, unknown>;
    } catch {
      return { kind: 'malformed', reason: 'preview metadata is not JSON' };
    }
    const fmt = typeof meta?.image_type === 'string' ? meta.image_type : 'image/jpeg';
    return { kind: 'binary', event, bytes: buf.length, preview: { format: fmt, meta, image: buf.subarray(8 + len) } };
  }
  return { kind: 'binary', event, bytes: buf.length };
}

/** Decodes one text frame: `{"type": str, "data": object}`. */
export function parseTextFrame(text: string): ComfyFrame {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'malformed', reason: 'text frame is not JSON' };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { kind: 'malformed', reason: 'frame is not an object' };
  const { type, data } = msg as { type?: unknown; data?: unknown };
  if (typeof type !== 'string') return { kind: 'malformed', reason: 'frame has no string type' };
  return { kind: 'json', type, data: typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {} };
}

export class ComfyWsClient {
  private socket: WebSocket | null = null;
  private stopped = true;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private awaitingPong = false;
  clientId: string | null = null;
  connectedAt: number | null = null;
  lastFrameAt: number | null = null;
  reconnects = 0;
  lastCloseReason: string | null = null;

  constructor(private readonly opts: ComfyWsOptions) {}

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.teardown('podscope stopping');
  }

  /** Drops the socket now and reconnects (used when HTTP says ComfyUI restarted). */
  recycle(reason: string): void {
    this.teardown(reason);
  }

  private connect(): void {
    if (this.stopped) return;
    // A fresh id for every connection: never a submitter's id, never reused.
    const clientId = `podscope-${randomUUID()}`;
    this.clientId = clientId;
    let ws: WebSocket;
    try {
      ws = new WebSocket(wsUrlFor(this.opts.url, clientId), { maxPayload: this.opts.maxPayloadBytes, handshakeTimeout: 10_000, perMessageDeflate: false });
    } catch (err) {
      this.scheduleReconnect(`cannot open websocket: ${(err as Error).message}`);
      return;
    }
    this.socket = ws;
    ws.on('open', () => {
      if (this.socket !== ws) return;
      this.attempt = 0;
      this.connectedAt = Date.now();
      this.awaitingPong = false;
      this.pingTimer = setInterval(() => this.ping(ws), this.opts.pingIntervalMs);
      this.pingTimer.unref();
      this.opts.events.onOpen(clientId);
    });
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (this.socket !== ws) return;
      this.lastFrameAt = Date.now();
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      let frame: ComfyFrame;
      try {
        frame = isBinary ? parseBinaryFrame(buf) : parseTextFrame(buf.toString('utf8'));
      } catch (err) {
        frame = { kind: 'malformed', reason: (err as Error).message };
      }
      try {
        this.opts.events.onFrame(frame);
      } catch {
        /* a consumer bug must not kill the socket */
      }
    });
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (this.socket !== ws) return;
      this.lastCloseReason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? `a frame exceeded ${this.opts.maxPayloadBytes} bytes` : err.message;
    });
    ws.on('close', (code: number) => {
      if (this.socket !== ws) return;
      const reason = this.lastCloseReason ?? `closed with code ${code}`;
      this.socket = null;
      this.clearPing();
      const wasOpen = this.connectedAt !== null;
      this.connectedAt = null;
      this.opts.events.onClose(reason);
      this.lastCloseReason = null;
      if (wasOpen) this.reconnects++;
      this.scheduleReconnect(reason);
    });
  }

  private ping(ws: WebSocket): void {
    if (this.socket !== ws) return;
    if (this.awaitingPong) {
      // No pong for a whole interval: the socket is dead or a zombie.
      this.lastCloseReason = `no pong within ${this.opts.pingIntervalMs} ms`;
      ws.terminate();
      return;
    }
    this.awaitingPong = true;
    try {
      ws.ping();
    } catch {
      ws.terminate();
    }
  }

  private clearPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.awaitingPong = false;
  }

  private teardown(reason: string): void {
    const ws = this.socket;
    if (!ws) return;
    this.lastCloseReason = reason;
    ws.terminate();
  }

  private scheduleReconnect(_reason: string): void {
    if (this.stopped || this.reconnectTimer) return;
    const min = this.opts.backoffMinMs ?? 250;
    const max = this.opts.backoffMaxMs ?? 10_000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delay = base / 2 + (this.opts.random ?? Math.random)() * (base / 2);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }
}
