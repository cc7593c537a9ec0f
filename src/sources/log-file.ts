/**
 * Follows a log file like `tail -F`: through rotation (a new file at the path), truncation,
 * deletion and re-creation. Reads are bounded; what arrives is handed over as text chunks, whole
 * lines or not (the caller assembles lines). State changes (missing, not a file) are reported.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

export type FollowState = 'following' | 'missing' | 'not-a-file' | 'unreadable';

export interface LogFileEvents {
  onChunk(text: string): void;
  onState(state: FollowState, detail: string): void;
  /** The file was replaced or truncated: a partial line from before belongs to nothing. */
  onReset(): void;
}

export interface LogFileOptions {
  path: string;
  pollMs?: number;
  /** At start, read at most this much of what the file already holds. */
  backlogBytes?: number;
  /** At most this much is read per poll; the rest waits for the next poll. */
  maxReadBytes?: number;
  events: LogFileEvents;
}

export class LogFileFollower {
  private fh: FileHandle | null = null;
  private ino: number | null = null;
  private pos = 0;
  private state: FollowState | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private busy: Promise<void> | null = null;
  private first = true;
  // Keeps a multi-byte character split across two reads whole.
  private decoder = new StringDecoder('utf8');
  bytesRead = 0;

  constructor(private readonly opts: LogFileOptions) {}

  start(): void {
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      this.busy = this.poll().finally(() => {
        this.busy = null;
        if (!this.stopped) this.timer = setTimeout(loop, this.opts.pollMs ?? 250);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.busy;
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
  }

  private setState(state: FollowState, detail: string): void {
    if (this.state === state) return;
    this.state = state;
    this.opts.events.onState(state, detail);
  }

  /** One look at the file. Public for tests that drive it without the timer. */
  async poll(): Promise<void> {
    let st;
    try {
      st = await stat(this.opts.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      await this.drainAndClose();
      this.setState(code === 'ENOENT' ? 'missing' : 'unreadable', code);
      this.first = false;
      return;
    }
    if (!st.isFile()) {
      await this.drainAndClose();
      this.setState('not-a-file', st.isDirectory() ? 'the path is a directory' : 'the path is not a regular file');
      return;
    }
    if (this.fh && st.ino !== this.ino) {
      // Rotated or replaced: finish the old file, then start the new one from its beginning.
      await this.drainAndClose();
      this.decoder = new StringDecoder('utf8');
      this.opts.events.onReset();
    }
    if (!this.fh) {
      try {
        this.fh = await open(this.opts.path, 'r');
      } catch (err) {
        this.setState('unreadable', (err as NodeJS.ErrnoException).code ?? 'error');
        return;
      }
      this.ino = st.ino;
      // At start-up, a bounded look back; after a rotation or re-creation, the whole new file.
      this.pos = this.first ? Math.max(0, st.size - (this.opts.backlogBytes ?? 256 * 1024)) : 0;
      this.first = false;
    }
    this.setState('following', this.opts.path);
    if (st.size < this.pos) {
      // Truncated in place (copytruncate, `> file`): read from the start again.
      this.pos = 0;
      this.decoder = new StringDecoder('utf8');
      this.opts.events.onReset();
    }
    await this.readNew(st.size);
  }

  private async readNew(size: number): Promise<void> {
    if (!this.fh) return;
    const max = this.opts.maxReadBytes ?? 4 * 1024 * 1024;
    let remaining = Math.min(size - this.pos, max);
    while (remaining > 0) {
      const buf = Buffer.allocUnsafe(Math.min(remaining, 256 * 1024));
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.pos);
      if (bytesRead === 0) break;
      this.pos += bytesRead;
      this.bytesRead += bytesRead;
      remaining -= bytesRead;
      this.opts.events.onChunk(this.decoder.write(buf.subarray(0, bytesRead)));
    }
  }

  private async drainAndClose(): Promise<void> {
    if (!this.fh) return;
    try {
      const st = await this.fh.stat();
      await this.readNew(st.size);
    } catch {
      /* the old file is gone; what was read is what there is */
    }
    await this.fh.close().catch(() => undefined);
    this.fh = null;
    this.ino = null;
  }

  describe(): Record<string, unknown> {
    return { path: this.opts.path, state: this.state, position: this.pos, bytes_read: this.bytesRead };
  }
}
