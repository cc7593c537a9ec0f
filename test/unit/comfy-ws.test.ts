/**
 * podscope's ComfyUI websocket client against a real websocket server on loopback: what it
 * connects as, how it decodes what ComfyUI sends (protocol section 1.4), and how it survives a
 * server that sends garbage, oversized frames, or stops answering.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { ComfyWsClient, parseBinaryFrame, parseTextFrame, wsUrlFor, type ComfyFrame } from '../../src/sources/comfy-ws.js';
import { until } from '../helpers/wait.js';

/** A binary frame: 4-byte event type, then the payload parts. */
function binary(event: number, ...parts: Buffer[]): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(event);
  return Buffer.concat([head, ...parts]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('wsUrlFor', () => {
  it('turns http into ws and appends /ws with the client id', () => {
    expect(wsUrlFor('http://127.0.0.1:8188', 'podscope-1')).toBe('ws://127.0.0.1:8188/ws?clientId=podscope-1');
  });

  it('turns https into wss', () => {
    expect(wsUrlFor('https://abc-8188.proxy.runpod.net', 'x')).toBe('wss://abc-8188.proxy.runpod.net/ws?clientId=x');
  });

  it('keeps a base path and drops its trailing slashes', () => {
    expect(wsUrlFor('http://host:8188/comfy//', 'x')).toBe('ws://host:8188/comfy/ws?clientId=x');
  });

  it('replaces a query the HTTP URL carried and escapes the client id', () => {
    expect(wsUrlFor('http://host:8188/?token=abc', 'a b&c')).toBe('ws://host:8188/ws?clientId=a%20b%26c');
  });
});

describe('parseTextFrame', () => {
  it('reads a frame with a type and a data object', () => {
    expect(parseTextFrame('{"type":"status","data":{"status":{}}}')).toEqual({ kind: 'json', type: 'status', data: { status: {} } });
  });

  it('gives a frame without data an empty data object', () => {
    expect(parseTextFrame('{"type":"crystools.monitor"}')).toEqual({ kind: 'json', type: 'crystools.monitor', data: {} });
  });

  it('gives a frame whose data is a list an empty data object', () => {
    expect(parseTextFrame('{"type":"x","data":[1,2]}')).toEqual({ kind: 'json', type: 'x', data: {} });
  });

  it.each([
    ['not JSON', '{"type":', 'text frame is not JSON'],
    ['a JSON list', '[1,2]', 'frame is not an object'],
    ['JSON null', 'null', 'frame is not an object'],
    ['a number type', '{"type":7,"data":{}}', 'frame has no string type'],
    ['no type', '{"data":{}}', 'frame has no string type'],
  ])('calls %s malformed, with the reason', (_name, text, reason) => {
    expect(parseTextFrame(text)).toEqual({ kind: 'malformed', reason });
  });
});

describe('parseBinaryFrame', () => {
  it('reads a PNG preview (event 1, format 2)', () => {
    const f = parseBinaryFrame(binary(1, u32(2), Buffer.from('PNGDATA')));
    expect(f).toMatchObject({ kind: 'binary', event: 1, bytes: 15, preview: { format: 'image/png', meta: null } });
    expect((f as { preview: { image: Buffer } }).preview.image.toString()).toBe('PNGDATA');
  });

  it('reads a JPEG preview (event 1, format 1)', () => {
    expect(parseBinaryFrame(binary(1, u32(1), Buffer.from('J')))).toMatchObject({ preview: { format: 'image/jpeg' } });
  });

  it('reads a text frame (event 3) as its node id and text', () => {
    const f = parseBinaryFrame(binary(3, u32(2), Buffer.from('12loading…')));
    expect(f).toMatchObject({ kind: 'binary', event: 3, text: { nodeId: '12', text: 'loading…' } });
  });

  it('reads a preview with metadata (event 4) and takes its image type from the metadata', () => {
    const meta = Buffer.from(JSON.stringify({ node_id: '3', prompt_id: 'P', image_type: 'image/webp' }));
    const f = parseBinaryFrame(binary(4, u32(meta.length), meta, Buffer.from('IMG')));
    expect(f).toMatchObject({ kind: 'binary', event: 4, preview: { format: 'image/webp', meta: { node_id: '3', prompt_id: 'P' } } });
    expect((f as { preview: { image: Buffer } }).preview.image.toString()).toBe('IMG');
  });

  it('keeps an unknown binary event as its number and size', () => {
    expect(parseBinaryFrame(binary(99, Buffer.alloc(10)))).toEqual({ kind: 'binary', event: 99, bytes: 14 });
  });

  it.each([
    ['shorter than its type', Buffer.from([0, 0]), 'binary frame shorter than its 4-byte type'],
    ['a text frame whose node id runs past the end', binary(3, u32(1000), Buffer.from('ab')), 'text frame node id runs past the end'],
    ['preview metadata that runs past the end', binary(4, u32(1000), Buffer.from('{}')), 'preview metadata runs past the end'],
    ['preview metadata that is not JSON', binary(4, u32(3), Buffer.from('{{{IMG')), 'preview metadata is not JSON'],
  ])('calls %s malformed', (_name, buf, reason) => {
    expect(parseBinaryFrame(buf)).toEqual({ kind: 'malformed', reason });
  });
});

// ---------------------------------------------------------------------------------------------

interface Server {
  wss: WebSocketServer;
  url: string;
  /** Client ids of every connection, in order. */
  ids: string[];
  sockets: ServerSocket[];
  close(): Promise<void>;
}

async function startServer(opts: { autoPong?: boolean } = {}): Promise<Server> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: opts.autoPong ?? true });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const ids: string[] = [];
  const sockets: ServerSocket[] = [];
  wss.on('connection', (socket, req) => {
    const url = new URL(req.url ?? '/', 'http://x');
    ids.push(`${url.pathname} ${url.searchParams.get('clientId')}`);
    sockets.push(socket);
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    wss,
    url: `http://127.0.0.1:${port}`,
    ids,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

interface Seen {
  frames: ComfyFrame[];
  opens: string[];
  closes: string[];
}

function client(url: string, extra: Partial<ConstructorParameters<typeof ComfyWsClient>[0]> = {}, onFrame?: (f: ComfyFrame) => void): { c: ComfyWsClient; seen: Seen } {
  const seen: Seen = { frames: [], opens: [], closes: [] };
  const c = new ComfyWsClient({
    url,
    pingIntervalMs: 60_000,
    maxPayloadBytes: 1024 * 1024,
    backoffMinMs: 20,
    backoffMaxMs: 200,
    random: () => 0.5,
    events: {
      onOpen: (id) => seen.opens.push(id),
      onFrame: (f) => {
        seen.frames.push(f);
        onFrame?.(f);
      },
      onClose: (reason) => seen.closes.push(reason),
    },
    ...extra,
  });
  return { c, seen };
}

const running: Array<{ stop(): unknown }> = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) r.stop();
  for (const s of servers.splice(0)) await s.close();
});

async function setup(opts: { autoPong?: boolean } = {}, extra: Partial<ConstructorParameters<typeof ComfyWsClient>[0]> = {}, onFrame?: (f: ComfyFrame) => void) {
  const server = await startServer(opts);
  servers.push(server);
  const { c, seen } = client(server.url, extra, onFrame);
  running.push(c);
  c.start();
  await until(() => c.connected && server.sockets.length > 0);
  return { server, c, seen, socket: () => server.sockets.at(-1)! };
}

describe('ComfyWsClient', () => {
  it('connects to /ws under a podscope client id of its own', async () => {
    const { server, seen } = await setup();
    expect(server.ids[0]).toMatch(/^\/ws podscope-[0-9a-f-]{36}$/);
    expect(seen.opens).toEqual([server.ids[0]!.split(' ')[1]]);
  });

  it('hands over text and binary frames in the order they came', async () => {
    const { socket, seen } = await setup();
    socket().send('{"type":"status","data":{"status":{"exec_info":{"queue_remaining":0}}}}');
    socket().send(binary(1, u32(2), Buffer.from('x')));
    socket().send('{"type":"executing","data":{"node":null,"prompt_id":"P"}}');
    await until(() => seen.frames.length === 3);
    expect(seen.frames.map((f) => (f.kind === 'json' ? f.type : f.kind))).toEqual(['status', 'binary', 'executing']);
  });

  it('passes garbage on as malformed frames and stays connected', async () => {
    const { c, socket, seen } = await setup();
    socket().send('not json at all');
    socket().send(Buffer.from([1, 2]));
    socket().send('{"type":"status","data":{}}');
    await until(() => seen.frames.length === 3);
    expect(seen.frames.map((f) => f.kind)).toEqual(['malformed', 'malformed', 'json']);
    expect(c.connected).toBe(true);
  });

  it('stays connected when its consumer throws on a frame', async () => {
    const { c, socket, seen } = await setup({}, {}, () => {
      throw new Error('consumer bug');
    });
    socket().send('{"type":"a","data":{}}');
    socket().send('{"type":"b","data":{}}');
    await until(() => seen.frames.length === 2);
    expect(c.connected).toBe(true);
  });

  it('records when the last frame came', async () => {
    const { c, socket, seen } = await setup();
    expect(c.lastFrameAt).toBeNull();
    socket().send('{"type":"status","data":{}}');
    await until(() => seen.frames.length === 1);
    expect(c.lastFrameAt).toEqual(expect.any(Number));
  });

  it('closes on a frame larger than its limit, says so, and reconnects under a new id', async () => {
    const { server, c, socket, seen } = await setup({}, { maxPayloadBytes: 64 * 1024 });
    socket().send(Buffer.alloc(65 * 1024));
    await until(() => seen.closes.length === 1);
    expect(seen.closes[0]).toBe('a frame exceeded 65536 bytes');
    await until(() => c.connected && server.ids.length === 2);
    expect(server.ids[1]).not.toBe(server.ids[0]);
    expect(c.reconnects).toBe(1);
  });

  it('takes a frame just under its limit', async () => {
    const { c, socket, seen } = await setup({}, { maxPayloadBytes: 64 * 1024 });
    socket().send(binary(1, u32(1), Buffer.alloc(64 * 1024 - 8)));
    await until(() => seen.frames.length === 1);
    expect(seen.frames[0]).toMatchObject({ kind: 'binary', bytes: 64 * 1024 });
    expect(c.connected).toBe(true);
  });

  it('tears down a socket whose server stops answering pings, and reconnects', async () => {
    const { server, c, seen } = await setup({ autoPong: false }, { pingIntervalMs: 100 });
    await until(() => seen.closes.length >= 1);
    expect(seen.closes[0]).toBe('no pong within 100 ms');
    await until(() => server.ids.length >= 2);
    expect(c.reconnects).toBeGreaterThanOrEqual(1);
  });

  it('keeps a socket whose server answers pings', async () => {
    const { c, socket, seen } = await setup({}, { pingIntervalMs: 50 });
    let pings = 0;
    socket().on('ping', () => pings++);
    await until(() => pings >= 4);
    expect(seen.closes).toEqual([]);
    expect(c.connected).toBe(true);
  });

  it('reconnects when the server closes the socket, with the close code as the reason', async () => {
    const { server, c, socket, seen } = await setup();
    socket().close(1001, 'going away');
    await until(() => seen.closes.length === 1);
    expect(seen.closes[0]).toBe('closed with code 1001');
    await until(() => c.connected && server.ids.length === 2);
  });

  it('keeps trying a server that is down, then connects when it comes back on the same port', async () => {
    const first = await startServer();
    const port = Number(new URL(first.url).port);
    await first.close();
    const { c, seen } = client(first.url);
    running.push(c);
    c.start();
    await until(() => seen.closes.length >= 3);
    expect(c.connected).toBe(false);
    expect(c.reconnects).toBe(0);
    const wss = new WebSocketServer({ port, host: '127.0.0.1' });
    servers.push({ wss, url: first.url, ids: [], sockets: [], close: () => new Promise<void>((r) => (wss.clients.forEach((s) => s.terminate()), wss.close(() => r()))) });
    await until(() => c.connected, 15_000);
    expect(seen.opens).toHaveLength(1);
  });

  it('drops and reopens the socket when recycled', async () => {
    const { server, c, seen } = await setup();
    c.recycle('ComfyUI restarted');
    await until(() => seen.closes.length === 1);
    expect(seen.closes[0]).toBe('ComfyUI restarted');
    await until(() => c.connected && server.ids.length === 2);
  });

  it('does not reconnect once stopped', async () => {
    const { server, c, seen } = await setup();
    // A control client with the same backoff, recycled at the same moment: once it has come back
    // twice, a reconnect of the stopped client would have come too.
    const control = client(server.url);
    running.push(control.c);
    control.c.start();
    await until(() => control.c.connected && server.ids.length === 2);
    c.stop();
    control.c.recycle('control');
    await until(() => control.c.connected && server.ids.length === 3);
    control.c.recycle('control');
    await until(() => control.c.connected && server.ids.length === 4);
    expect(seen.closes).toEqual(['podscope stopping']);
    expect(c.connected).toBe(false);
    expect(server.ids).toHaveLength(4);
  });
});
