/**
 * podscope's own logs: pino JSON lines with the fields of contract section 3.
 *
 * Every serialized line passes through the {@link Scrubber} before it reaches stdout or any other
 * sink, so a secret that slips into a message, an error or a data field never leaves the process.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from './config.js';
import type { Scrubber } from './secrets.js';
import { HTTP_METHODS } from './shared/http-methods.js';
import { iso } from './format.js';

export type { Logger } from 'pino';

/** A place serialized log lines go: stdout, a test sink, the log buffer. */
export interface LineSink {
  write(line: string): void;
  /** False for a sink that keeps no access lines (the log buffer: a harness polling hard would flush ComfyUI's lines out). */
  acceptsAccess?: boolean;
}

export interface LoggerOptions {
  level: LogLevel;
  podId: string;
  environment: string;
  scrubber: Scrubber;
  /** Where lines go; stdout by default. */
  sinks?: LineSink[];
}

/**
 * stdout, written in batches: lines gathered over FLUSH_MS go out in one write (at once when the
 * next line might not fit in BATCH_BYTES), instead of one system call per line or per turn of the
 * event loop; to a file, each write is synchronous. Whatever is pending is written before the
 * process exits. Lines are encoded into the batch as they come, so a busy pod's access lines die
 * young instead of waiting as strings for the next write; a batch is filled again only once its
 * write has ended.
 *
 * A reader that stops taking lines (a stuck log shipper, a paused pipe) would otherwise make every
 * write wait in memory, without bound: once PENDING_BYTES are handed to stdout and not yet
 * written, the batch being filled is held and lines after it are dropped, counted, until a write
 * ends.
 */
const FLUSH_MS = 25;
const BATCH_BYTES = 64 * 1024;
const SPARE_BATCHES = 2;
export const PENDING_BYTES = 1024 * 1024;
/** The most bytes one UTF-16 unit takes in UTF-8. */
const UTF8_PER_UNIT = 3;

/** Every buffered sink's flush, run once when the process exits (one listener, however many sinks). */
const flushAtExit = new Set<() => void>();
let exitHooked = false;

/** Whether stdout has failed (its reader closed the pipe): lines are then dropped, not fatal. */
let stdoutGone = false;
let stdoutWatched = false;

/**
 * Watches stdout for the server and the demo, once per process. A stdout that fails (EPIPE when
 * the log collector or the terminal's pipe goes away) would otherwise end podscope with an
 * unhandled error; it says so once on stderr, and podscope goes on serving without it.
 */
export function watchStdout(): void {
  if (stdoutWatched) return;
  stdoutWatched = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (stdoutGone) return;
    stdoutGone = true;
    process.stderr.on('error', () => undefined);
    process.stderr.write(`podscope: stdout failed (${err.code ?? err.message}); log lines are dropped from now on, its own records stay in /debug/logs\n`);
  });
}

/** Writes text to stdout while it works (see {@link watchStdout}); nothing once it has failed. */
export function say(text: string): void {
  watchStdout();
  if (!stdoutGone) process.stdout.write(text);
}

function writeStdout(bytes: Uint8Array, done: () => void): void {
  watchStdout();
  if (stdoutGone) return done();
  process.stdout.write(bytes, () => done());
}

/**
 * Told when stdout stops taking lines (the first line dropped) and when it takes them again; never
 * from inside a `write`.
 */
export interface StallListener {
  stalled(): void;
  /** `dropped`: the lines dropped since `stalled`. */
  resumed(dropped: number): void;
}

/** The stdout sink: a {@link LineSink} that counts what it could not write. */
export interface StdoutSink extends LineSink {
  /** Lines dropped, ever, because stdout was not taking them. */
  readonly dropped: number;
  watch(listener: StallListener): void;
}

export function bufferedStdout(write: (bytes: Uint8Array, done: () => void) => void = writeStdout, pendingBytes = PENDING_BYTES): StdoutSink {
  let batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
  let used = 0;
  let scheduled = false;
  // Batches whose write has ended, to fill again: a busy pod reuses two or three instead of
  // allocating one per write.
  const spare: (typeof batch)[] = [];
  /** Bytes handed to `write` whose write has not ended. */
  let pending = 0;
  let dropped = 0;
  /** Lines dropped since the stall began; null while stdout takes lines. */
  let stall: number | null = null;
  let listener: StallListener | undefined;

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      flush();
    }, FLUSH_MS).unref();
  };
  const hand = (bytes: Uint8Array, ended?: () => void) => {
    pending += bytes.byteLength;
    write(bytes, () => {
      pending -= bytes.byteLength;
      ended?.();
      if (stall === null) {
        // A batch held while stdout was behind goes out with the next flush.
        if (used > 0) schedule();
      } else if (flush()) {
        const n = stall;
        stall = null;
        listener?.resumed(n);
      }
    });
  };
  /** Hands the batch to `write`; false when stdout already has too much waiting (`force` aside). */
  const flush = (force = false): boolean => {
    if (used === 0) return true;
    if (!force && pending + used > pendingBytes) return false;
    const written = batch;
    batch = spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    const length = used;
    used = 0;
    hand(written.subarray(0, length), () => {
      if (spare.length < SPARE_BATCHES) spare.push(written);
    });
    return true;
  };
  const drop = () => {
    dropped++;
    if (stall !== null) return void stall++;
    stall = 1;
    // Not from inside `write`: the listener may log, which writes again.
    queueMicrotask(() => listener?.stalled());
  };
  flushAtExit.add(() => flush(true));
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const f of flushAtExit) f();
    });
  }
  return {
    get dropped() {
      return dropped;
    },
    watch(l) {
      listener = l;
    },
    write(line) {
      const most = line.length * UTF8_PER_UNIT;
      if (used + most > BATCH_BYTES) {
        if (!flush()) return drop();
        if (most > BATCH_BYTES) {
          const bytes = Buffer.from(line, 'utf8');
          if (pending + bytes.byteLength > pendingBytes) return drop();
          hand(bytes);
          return;
        }
      }
      used += batch.write(line, used, 'utf8');
      // One timer at a time: a batch written early, when full, leaves the pending timer to write
      // what comes after it.
      schedule();
    },
  };
}

const stdoutSink: StdoutSink = bufferedStdout();

/** The current time as ISO 8601, made once per millisecond however many lines share it. */
let isoAt = -1;
let isoText = '';
export function isoNow(): string {
  const now = Date.now();
  if (now !== isoAt) {
    isoAt = now;
    isoText = iso(now);
  }
  return isoText;
}

/**
 * One answered request. The ids and the route are written without JSON escaping, so they must be
 * what podscope makes of them: a request id from `requestIdFrom` (no quote, backslash or control
 * character), hex trace and span ids, and a route template or `unmatched`. Method and path are
 * the client's and are escaped.
 */
export interface AccessRecord {
  requestId: string;
  traceId: string;
  spanId: string;
  method: string;
  route: string;
  path: string;
  status: number;
  latencyMs: number;
}

/** Writes one access line; made by {@link accessLog} for a logger. */
export type AccessWriter = (r: AccessRecord) => void;

interface RootWriter {
  /** Hands an access line to the sinks that keep them, scrubbed unless `clean`. */
  writeAccess: (line: string, clean: boolean) => void;
  scrubber: Scrubber;
  base: string;
}

const writers = new WeakMap<Logger, RootWriter>();

export function createLogger(opts: LoggerOptions): Logger {
  const sinks = opts.sinks ?? [stdoutSink];
  const destination: DestinationStream = {
    write(line: string) {
      const clean = opts.scrubber.scrub(line);
      for (const sink of sinks) sink.write(clean);
    },
  };
  const logger = pino(
    {
      level: opts.level,
      messageKey: 'message',
      errorKey: 'error',
      base: { service: 'podscope', environment: opts.environment, pod_id: opts.podId },
      timestamp: () => `,"timestamp":"${isoNow()}"`,
      formatters: {
        level: (label) => ({ level: label }),
      },
      // No pino `redact`: it costs on every call, and the scrubber above already removes secret
      // values, bearer credentials and URL passwords from every serialized line. Request headers
      // are never logged.
    },
    destination,
  );
  const accessSinks = sinks.filter((s) => s.acceptsAccess !== false);
  writers.set(logger, {
    writeAccess: (line, clean) => {
      const out = clean ? line : opts.scrubber.scrub(line);
      for (const sink of accessSinks) sink.write(out);
    },
    scrubber: opts.scrubber,
    base: `"service":"podscope","environment":${JSON.stringify(opts.environment)},"pod_id":${JSON.stringify(opts.podId)}`,
  });
  return logger;
}

/**
 * The access line of one request, written straight to the logger's sinks (through the same
 * scrubber) with the fields pino would give it: building it by hand costs a fraction of a pino
 * call, and a harness polling hard makes thousands a second. Follows the logger's level.
 */
export function accessLog(logger: Logger, component: string): AccessWriter {
  // A pino child has its parent as prototype: the root's sinks are found up the chain.
  let w: RootWriter | undefined;
  for (let l: object | null = logger; l !== null && !w; l = Object.getPrototypeOf(l) as object | null) w = writers.get(l as Logger);
  if (!w) return (r) => logger.info({ request_id: r.requestId, trace_id: r.traceId, span_id: r.spanId, access: true, data: { method: r.method, route: r.route, path: r.path, status: r.status, latency_ms: r.latencyMs } }, `${r.method} ${r.path} ${r.status}`);
  const root = w;
  const head = `{"level":"info","timestamp":"`;
  const middle = `",${root.base},"component":${JSON.stringify(component)},"request_id":`;
  // Only the path and the request id come from the client: when neither can hold a secret, the
  // line needs no scrubbing (the constant parts were checked once, here).
  const constantClean = !root.scrubber.needsScrub(middle);
  return (r) => {
    if (!logger.isLevelEnabled('info')) return;
    const path = JSON.stringify(r.path);
    const method = HTTP_METHODS.has(r.method) ? r.method : JSON.stringify(r.method).slice(1, -1);
    const line = `${head}${isoNow()}${middle}"${r.requestId}","trace_id":"${r.traceId}","span_id":"${r.spanId}","access":true,"data":{"method":"${method}","route":"${r.route}","path":${path},"status":${r.status},"latency_ms":${r.latencyMs}},"message":"${method} ${path.slice(1, -1)} ${r.status}"}\n`;
    root.writeAccess(line, constantClean && !root.scrubber.needsScrub(r.path) && !root.scrubber.needsScrub(r.requestId));
  };
}


const components = new WeakMap<Logger, Set<Logger>>();

/**
 * A long-lived child logger for one component (a collector, the server). It follows run-time
 * level changes made with {@link setLogLevel}; pino children otherwise keep the level they were
 * born with.
 */
export function componentLogger(root: Logger, component: string, bindings: Record<string, string> = {}): Logger {
  const child = root.child({ component, ...bindings });
  let set = components.get(root);
  if (!set) components.set(root, (set = new Set()));
  set.add(child);
  return child;
}

export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const child of components.get(root) ?? []) child.level = level;
}
