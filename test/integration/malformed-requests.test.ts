/**
 * Requests Node's HTTP parser refuses before any route sees them, sent over a raw socket to a real
 * podscope: each gets podscope's error envelope with a request id, and the server goes on
 * answering everyone else.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPodscope, type Podscope } from '../../src/main.js';

let pod: Podscope;
beforeAll(async () => {
  pod = await startPodscope({
    env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'silent' },
    sinks: [],
  });
});
afterAll(async () => {
  await pod.close();
});

/** Writes `raw` to podscope and reads until it closes the connection (or 10 s pass). */
function exchange(raw: string | Buffer, opts: { destroyAfterWrite?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(pod.port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(got);
    }, 10_000);
    socket.on('data', (d) => (got += d));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (opts.destroyAfterWrite) resolve(got);
      else reject(err);
    });
    socket.write(raw, () => {
      if (opts.destroyAfterWrite) socket.destroy();
    });
  });
}

function parse(answer: string) {
  const [head, body] = answer.split('\r\n\r\n', 2) as [string, string];
  const [status, ...headers] = head.split('\r\n');
  const h = new Map(headers.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: status!, headers: h, body: JSON.parse(body) as { error: { code: string; message: string; request_id: string } } };
}

describe('a request that is not HTTP', () => {
  it('gets 400 BAD_REQUEST in the error envelope, with a request id in the header and the body', async () => {
    const a = parse(await exchange('HELLO THERE\r\n\r\n'));
    expect(a.status).toBe('HTTP/1.1 400 Bad Request');
    expect(a.body.error.code).toBe('BAD_REQUEST');
    expect(a.headers.get('x-request-id')).toBe(a.body.error.request_id);
    expect(a.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(a.headers.get('connection')).toBe('close');
  });

  it('gets 400 for binary garbage', async () => {
    expect(parse(await exchange(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]))).status).toBe('HTTP/1.1 400 Bad Request');
  });

  it('gets 400 for a header line without a colon', async () => {
    expect(parse(await exchange('GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n')).body.error.code).toBe('BAD_REQUEST');
  });
});

describe('headers larger than podscope accepts', () => {
  it('get 431 HEADERS_TOO_LARGE with a hint', async () => {
    const a = parse(await exchange(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`));
    expect(a.status).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(a.body.error.code).toBe('HEADERS_TOO_LARGE');
  });
});

describe('after refusing such requests', () => {
  it('podscope answers everyone else, including a client that hung up mid-request', async () => {
    await exchange('GET /health HTTP/1.1\r\nHost: x\r\nX-Half: ', { destroyAfterWrite: true });
    await exchange('JUNK\r\n\r\n');
    const res = await fetch(`http://127.0.0.1:${pod.port}/health`);
    expect(res.status).toBe(200);
  });

  it('a well-formed raw request still gets its answer on the same path', async () => {
    const answer = await exchange('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer.startsWith('HTTP/1.1 200 OK')).toBe(true);
  });
});
