/**
 * One long-lived `nvidia-smi … -lms PERIOD`, read as it streams.
 *
 * nvidia-smi in loop mode prints one block of CSV lines per period and sleeps in between, so one
 * process serves every sample. Its output arrives in pieces that may cut a line anywhere; lines
 * are put back together and grouped into samples: a block ends when a key (the first cell) comes
 * again, or when the stream has been quiet for `quietMs` after a line. A line too long to be CSV
 * is dropped rather than buffered without bound.
 *
 * The child leads its own process group, so `kill()` takes anything it started with it. `exited`
 * settles when it has really gone; a child stuck in the driver may never go, and the caller must
 * not start another beside it.
 */
import { spawn } from 'node:child_process';
import { killProcessGroup } from './process.js';

const MAX_LINE = 64 * 1024;
/** Lines of stderr kept to explain an exit. */
const STDERR_LINES = 20;

export interface LoopExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The spawn error's code (ENOENT, EACCES) when it never ran. */
  errno: string | null;
  /** The last lines it printed (stdout and stderr), to classify a failure by. */
  tail: string;
}

export interface SmiLoopOptions {
  bin: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /**
   * A complete sample: its lines, in order (stderr lines of the same moment included); `ending`
   * when it is what the process printed last, just before it exited.
   */
  onSample: (lines: string[], ending: boolean) => void;
  /** How long a quiet stream waits before the lines so far make a sample. */
  quietMs?: number;
  /** The key of a line (its first cell by default): a key seen again starts a new sample. */
  keyOf?: (line: string) => string | null;
}

export class SmiLoop {
  readonly pid: number | undefined;
  readonly startedAt = Date.now();
  /** When the last complete line arrived; null before the first. */
  lastLineAt: number | null = null;
  samples = 0;
  /** Settles with how it ended, once the process has really gone. */
  readonly exited: Promise<LoopExit>;
  private partial = '';
  private block: string[] = [];
  private keys = new Set<string>();
  private quiet: NodeJS.Timeout | null = null;
  private readonly tail: string[] = [];
  private readonly child: ReturnType<typeof spawn> | null = null;

  constructor(private readonly opts: SmiLoopOptions) {
    let done!: (e: LoopExit) => void;
    this.exited = new Promise((resolve) => (done = resolve));
    try {
      this.child = spawn(opts.bin, opts.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, windowsHide: true });
    } catch (err) {
      done({ code: null, signal: null, errno: (err as NodeJS.ErrnoException).code ?? 'ERR', tail: (err as Error).message });
      return;
    }
    this.pid = this.child.pid;
    let errno: string | null = null;
    this.child.stdout!.on('data', (chunk: Buffer) => this.take(chunk.toString('utf8')));
    let errPartial = '';
    this.child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (errPartial + chunk.toString('utf8')).split('\n');
      errPartial = (lines.pop() ?? '').slice(0, MAX_LINE);
      for (const l of lines) if (l.trim() !== '') this.line(l, true);
    });
    this.child.on('error', (e: NodeJS.ErrnoException) => {
      errno = e.code ?? 'ERR';
      this.remember(e.message);
    });
    this.child.on('close', (code, signal) => {
      if (this.partial.trim() !== '') this.line(this.partial, false);
      if (errPartial.trim() !== '') this.remember(errPartial);
      this.flush(true);
      done({ code, signal, errno, tail: this.tail.join('\n') });
    });
  }

  /** SIGKILL to the loop and its process group. */
  kill(): void {
    if (this.child) killProcessGroup(this.child);
  }

  private take(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > MAX_LINE) this.partial = '';
    for (const l of lines) this.line(l, false);
    if (this.block.length > 0) this.armQuiet();
  }

  private line(raw: string, fromStderr: boolean): void {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.length > MAX_LINE) return;
    this.lastLineAt = Date.now();
    this.remember(line);
    const key = fromStderr ? null : (this.opts.keyOf ?? firstCell)(line);
    if (key !== null && this.keys.has(key)) this.flush();
    if (key !== null) this.keys.add(key);
    this.block.push(line);
  }

  private remember(line: string): void {
    this.tail.push(line.slice(0, 500));
    if (this.tail.length > STDERR_LINES) this.tail.shift();
  }

  private armQuiet(): void {
    if (this.quiet) clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.flush(), this.opts.quietMs ?? 50);
    this.quiet.unref();
  }

  private flush(ending = false): void {
    if (this.quiet) clearTimeout(this.quiet);
    this.quiet = null;
    if (this.block.length === 0) return;
    const lines = this.block;
    this.block = [];
    this.keys = new Set();
    this.samples++;
    this.opts.onSample(lines, ending);
  }
}

function firstCell(line: string): string {
  const comma = line.indexOf(',');
  return (comma < 0 ? line : line.slice(0, comma)).trim();
}
