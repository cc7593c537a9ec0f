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

const stdoutSink: LineSink = {
  write(line) {
    process.stdout.write(line);
  },
};

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
      // Request headers are never logged whole; these paths catch them if someone tries.
      redact: {
        paths: ['headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie', 'authorization', 'token'],
        censor: '[REDACTED]',
      },
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
