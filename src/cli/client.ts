/**
 * The CLI's HTTP client: one request to a pod, every failure turned into a sentence and the exit
 * code the contract gives it (3 when the pod cannot be reached or refuses the token).
 */

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  url: string;
  token?: string;
  timeoutMs?: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getJson(opts: ClientOptions, path: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'podscope-cli' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let res: Response;
  try {
    res = await fetch(`${opts.url.replace(/\/+$/, '')}${path}`, { headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    const why = (err as Error).name === 'TimeoutError' ? 'no answer within 10 s' : (cause ?? (err as Error).message);
    throw new CliError(`cannot reach podscope at ${opts.url}: ${why}`, 3);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  if (res.status === 401) throw new CliError(`podscope at ${opts.url} refused the request: ${opts.token ? 'the token is not valid' : 'it needs a token (--token or PODSCOPE_TOKEN)'}`, 3);
  if (res.status === 403) throw new CliError(`podscope at ${opts.url} answers only loopback clients without a token: set PODSCOPE_TOKEN on the pod and pass --token`, 3);
  return { status: res.status, body };
}

/** The error envelope's message, or a generic one. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function errorMessage(body: any, status: number): string {
  return typeof body === 'object' && body?.error?.message ? `${body.error.code}: ${body.error.message}` : `HTTP ${status}`;
}

/**
 * Follows a pod's /debug/events and calls `onEvent` with each event's type, to wake a poller
 * early, and `onOpen` once it is connected. Never throws: `alive()` turns false when the stream
 * cannot be opened or ends (an older podscope without it, a proxy that cut it), and the caller
 * goes on polling at its own pace.
 */
export function followEvents(opts: ClientOptions, path: string, onEvent: (type: string) => void, onOpen: () => void = () => {}): { alive(): boolean; close(): void } {
  const ac = new AbortController();
  let alive = true;
  const headers: Record<string, string> = { accept: 'text/event-stream', 'user-agent': 'podscope-cli' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  void (async () => {
    try {
      const res = await fetch(`${opts.url.replace(/\/+$/, '')}${path}`, { headers, signal: ac.signal });
      if (res.status !== 200 || !res.body) return;
      onOpen();
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        // Only the event lines matter; a pending partial block stays small.
        buf = (buf + decoder.decode(value, { stream: true })).slice(-64 * 1024);
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const type = /^event: (.+)$/m.exec(buf.slice(0, cut))?.[1];
          buf = buf.slice(cut + 2);
          if (type) onEvent(type);
        }
      }
    } catch {
      /* refused, aborted or cut: polling goes on */
    } finally {
      alive = false;
    }
  })();
  return {
    alive: () => alive,
    close: () => ac.abort(),
  };
}
