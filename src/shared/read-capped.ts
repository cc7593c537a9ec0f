/** Reading a body with a cap: what is past it is never held in memory. */

/** The stream's text, or null once it passes `max` bytes (the rest is cancelled, unread). */
export async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<string | null> {
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A request's body as text, or null when it is larger than `max`: a declared length over the cap
 * is refused before anything is read, and an undeclared one stops being read past it.
 */
export async function readRequestCapped(req: Request, max: number): Promise<string | null> {
  const declared = Number(req.headers.get('content-length') ?? NaN);
  return declared > max ? null : readCapped(req.body, max);
}
