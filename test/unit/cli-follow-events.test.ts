/**
 * The CLI's event follower (cli/client.ts followEvents), which wakes `podscope wait`: what it
 * hands over from a real SSE server, and that a pod without the stream never makes it throw.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { followEvents } from '../../src/cli/client.js';
import { until } from '../helpers/wait.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())));
});

async function serve(handler: (res: ServerResponse, auth: string | undefined) => void): Promise<string> {
  const s = createServer((req, res) => handler(res, req.headers.authorization));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('followEvents', () => {
  it('says when it is connected, then hands over each event’s type, split across writes or not', async () => {
    let stream: ServerResponse | undefined;
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': hello\n\n');
      stream = res;
    });
    const types: string[] = [];
    let opened = 0;
    const f = followEvents({ url }, '/debug/events', (t) => types.push(t), () => opened++);
    await until(() => opened === 1 && stream);
    stream!.write('id: a-1\nevent: job_queued\ndata: {}\n\nid: a-2\nevent: job_sta');
    stream!.write('rted\ndata: {}\n\n: heartbeat\n\n');
    await until(() => types.length === 2);
    expect(types).toEqual(['job_queued', 'job_started']);
    expect(f.alive()).toBe(true);
    f.close();
    await until(() => !f.alive());
  });

  it('sends the token as a bearer credential', async () => {
    let seen: string | undefined;
    const url = await serve((res, auth) => {
      seen = auth;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end();
    });
    const f = followEvents({ url, token: 'tok_123456' }, '/debug/events', () => undefined);
    await until(() => !f.alive());
    expect(seen).toBe('Bearer tok_123456');
  });

  it('stops, without throwing and without saying it connected, against a pod without the stream', async () => {
    const url = await serve((res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"NOT_FOUND"}}');
    });
    let opened = 0;
    const f = followEvents({ url }, '/debug/events', () => undefined, () => opened++);
    await until(() => !f.alive());
    expect(opened).toBe(0);
  });

  it('stops, without throwing, when nothing listens', async () => {
    const f = followEvents({ url: 'http://127.0.0.1:9' }, '/debug/events', () => undefined);
    await until(() => !f.alive());
  });
});
