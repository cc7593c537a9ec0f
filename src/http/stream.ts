/**
 * A streamed answer (server-sent events, or chunked text) fed by a subscription: a heartbeat
 * keeps RunPod's proxy (which cuts a connection idle for 100 s) from closing it, a reader that
 * falls too far behind is dropped rather than buffered without bound, and every stream ends when
 * podscope stops.
 */
import type { Context } from 'hono';
import type { PodReader } from '../state/pod.js';
import { responseHeaders } from './respond.js';

/** Bytes a reader may fall behind by before it is dropped. */
export const MAX_PENDING_BYTES = 1024 * 1024;

/** The streams open now, each by the function that ends it: all are ended when podscope stops. */
export type OpenStreams = Set<() => void>;

export interface StreamSpec {
  /** Where the stream is listed while it is open. */
  open: OpenStreams;
  contentType: string;
  /** What is sent first: a greeting, then what the client is owed from before. */
  initial: string[];
  /** Starts the feed; returns the unsubscribe. `send` returns false once the stream has ended. */
  subscribe(send: (chunk: string) => boolean): () => void;
  heartbeat: string;
  /** The last chunk of a dropped reader, and of every stream when podscope stops. */
  dropped: string;
  stopping: string;
  /** Told when a reader is dropped for falling behind. */
  onDrop?(): void;
  /** Told when the stream starts, and once when it ends, however it ends. */
  onStart?(): void;
  onEnd?(): void;
}

export function streamResponse(c: Context, state: PodReader, spec: StreamSpec): Response {
  const headers = responseHeaders(c, { 'Content-Type': spec.contentType, 'Cache-Control': 'no-cache, no-store', 'X-Accel-Buffering': 'no' });
  // HEAD: the headers alone. A stream made and never read would hold its subscription forever.
  if (c.req.method === 'HEAD') return c.body(null, 200, headers);
  const encoder = new TextEncoder();
  let cleanup = () => {};
  let cancelled = () => {};
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true;
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          cleanup();
          spec.onEnd?.();
        };
        const end = (last: string) => {
          if (!open) return;
          open = false;
          finish();
          try {
            if (last) controller.enqueue(encoder.encode(last));
            controller.close();
          } catch {
            /* already closed by the client */
          }
        };
        const enqueue = (chunk: string) => controller.enqueue(encoder.encode(state.scrubber.containsSecret(chunk) ? state.scrubber.scrubValues(chunk) : chunk));
        const send = (chunk: string): boolean => {
          if (!open) return false;
          if ((controller.desiredSize ?? 0) < -MAX_PENDING_BYTES) {
            spec.onDrop?.();
            end(spec.dropped);
            return false;
          }
          enqueue(chunk);
          return true;
        };
        spec.onStart?.();
        const stop = () => end(spec.stopping);
        spec.open.add(stop);
        const heartbeat = setInterval(() => send(spec.heartbeat), state.config.followHeartbeatMs);
        heartbeat.unref();
        let unsubscribe = () => {};
        cleanup = () => {
          unsubscribe();
          clearInterval(heartbeat);
          spec.open.delete(stop);
        };
        cancelled = finish;
        // What the client is owed from before is bounded by the buffer it comes from: all of it is
        // queued, however slowly the client then reads it.
        for (const chunk of spec.initial) enqueue(chunk);
        unsubscribe = spec.subscribe(send);
      },
      cancel() {
        cancelled();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
  return c.body(body, 200, headers);
}
