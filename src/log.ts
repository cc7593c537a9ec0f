/**
 * podscope's own logs: pino JSON lines with the fields of contract section 3.
 *
 * Every serialized line passes through the {@link Scrubber} before it reaches stdout or any other
 * sink, so a secret that slips into a message, an error or a data field never leaves the process.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from './config.js';
import type { Scrubber } from './secrets.js';

export type { Logger } from 'pino';

/** A place serialized log lines go: stdout, a test sink, the log buffer. */
export interface LineSink {
  write(line: string): void;
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
 * stdout, written in batches: lines gathered during one turn of the event loop go out in one
 * write at the next (or at once past 64 KiB), instead of one system call per line. Whatever is
 * pending is written before the process exits.
 */
/** Every buffered sink's flush, run once when the process exits (one listener, however many sinks). */
const flushAtExit = new Set<() => void>();
let exitHooked = false;

export function bufferedStdout(write: (text: string) => void = (t) => process.stdout.write(t)): LineSink {
  let pending: string[] = [];
  let size = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    size = 0;
    write(text);
  };
  flushAtExit.add(flush);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const f of flushAtExit) f();
    });
  }
  return {
    write(line) {
      pending.push(line);
      size += line.length;
      if (size >= 64 * 1024) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}

const stdoutSink: LineSink = bufferedStdout();

export function createLogger(opts: LoggerOptions): Logger {
  const sinks = opts.sinks ?? [stdoutSink];
  const destination: DestinationStream = {
    write(line: string) {
      const clean = opts.scrubber.scrub(line);
      for (const sink of sinks) sink.write(clean);
    },
  };
  return pino(
    {
      level: opts.level,
      messageKey: 'message',
      errorKey: 'error',
      base: { service: 'podscope', environment: opts.environment, pod_id: opts.podId },
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: {
        level: (label) => ({ level: label }),
      },
      // No pino `redact`: it costs on every call, and the scrubber above already removes secret
      // values, bearer credentials and URL passwords from every serialized line. Request headers
      // are never logged.
    },
    destination,
  );
}

const components = new WeakMap<Logger, Set<Logger>>();

/**
 * A long-lived child logger for one component (a collector, the server). It follows run-time
 * level changes made with {@link setLogLevel}; pino children otherwise keep the level they were
 * born with.
 */
export function componentLogger(root: Logger, component: string): Logger {
  const child = root.child({ component });
  let set = components.get(root);
  if (!set) components.set(root, (set = new Set()));
  set.add(child);
  return child;
}

export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const child of components.get(root) ?? []) child.level = level;
}
