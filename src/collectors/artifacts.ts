/**
 * The artifacts collector: records every finished job's outputs in the ledger and checks each
 * file on disk (size, existence, modification time) when COMFYUI_OUTPUT_DIR is set, again every
 * 30 s for the newest ones. Temp outputs written before a ComfyUI restart are marked wiped.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { ArtifactFiles, ArtifactLedger, Artifact, OpenedFile } from '../state/artifacts.js';
import type { ReadonlyJob } from '../state/jobs.js';
import { contentTypeFor, directoryFor, nameProblem, resolveInside, type ComfyDirs } from '../sources/artifact-files.js';
import type { Collector } from './collector.js';

export class ArtifactCollector implements Collector {
  readonly name = 'artifacts';
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly opts: {
      ledger: ArtifactLedger;
      /** The instance whose outputs it checks. */
      instance: string;
      /** Where outputs live (the argv part is read when a check runs: ComfyUI reports it late). */
      dirs: () => ComfyDirs;
      /** ComfyUI's base URL: files in a directory podscope cannot see are checked through /view. */
      comfyuiUrl: string;
      now?: () => number;
    },
  ) {}

  /** A step of the finish pipeline: the job's outputs go into the ledger, and are checked on disk. */
  jobFinished(job: ReadonlyJob): void {
    const added = this.opts.ledger.addJob(job, (this.opts.now ?? Date.now)());
    void this.check(added);
  }

  start(): void {
    this.timer = setInterval(() => void this.check(this.opts.ledger.newest(200, this.opts.instance)), 30_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.checking;
  }

  private async checkThroughComfy(a: Artifact): Promise<void> {
    const q = new URLSearchParams({ filename: a.filename, subfolder: a.subfolder, type: a.type });
    try {
      const res = await fetch(`${this.opts.comfyuiUrl}/view?${q}`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
      if (res.status === 200) {
        a.exists = true;
        const len = Number(res.headers.get('content-length'));
        a.size_bytes = Number.isFinite(len) && len >= 0 ? len : null;
      } else if (res.status === 404) {
        a.exists = false;
      }
    } catch {
      /* ComfyUI away: existence stays unknown */
    }
  }

  /** ComfyUI restarted: its temp directory was wiped. */
  comfyRestarted(at: number): void {
    this.opts.ledger.markTempWiped(at, this.opts.instance);
  }

  /**
   * Stats each artifact's file (never two checks at once): on disk when podscope knows the
   * directory, else with a HEAD request to ComfyUI's /view (size from Content-Length).
   */
  check(items: Artifact[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    const run = async () => {
      const dirs = this.opts.dirs();
      for (const a of items) {
        if (a.wiped || (a.type !== 'output' && a.type !== 'temp') || nameProblem(a.filename, a.subfolder)) continue;
        const dir = await directoryFor(dirs, a.type);
        if (dir) {
          const facts = await resolveInside(dir, a.subfolder, a.filename);
          a.exists = facts !== null;
          a.size_bytes = facts?.size ?? null;
          a.mtime = facts ? facts.mtime.toISOString() : null;
        } else {
          await this.checkThroughComfy(a);
        }
      }
    };
    const previous = this.checking ?? Promise.resolve();
    const next = previous.then(run, run);
    this.checking = next.finally(() => {
      if (this.checking === next) this.checking = null;
    });
    return next;
  }
}

/** Where one instance's files are: its directories (when known) and its URL. */
export interface InstanceFiles {
  dirs: () => ComfyDirs;
  comfyuiUrl: string;
}

/**
 * Opens output files for downloads: from the instance's output or temp directory when podscope
 * knows it (never outside it: see sources/artifact-files.ts), else through its /view, which
 * applies its own checks too.
 */
export class ArtifactFileService implements ArtifactFiles {
  /** `instances`: each instance's files by name, looked up when a download is asked for. */
  constructor(private readonly instances: (name: string) => InstanceFiles | undefined) {}

  async open(instance: string, type: 'output' | 'temp', subfolder: string, filename: string): Promise<OpenedFile> {
    const problem = nameProblem(filename, subfolder);
    if (problem) return { kind: 'refused', problem };
    const where = this.instances(instance);
    if (!where) return { kind: 'unavailable', status: 400, message: `No ComfyUI instance is named ${JSON.stringify(instance.slice(0, 40))}.` };
    const contentType = contentTypeFor(filename);
    const dir = await directoryFor(where.dirs(), type);
    if (dir) {
      const facts = await resolveInside(dir, subfolder, filename);
      if (!facts) return { kind: 'missing' };
      return { kind: 'file', body: Readable.toWeb(createReadStream(facts.path)) as ReadableStream<Uint8Array>, size: facts.size, contentType };
    }
    let res: Response;
    try {
      res = await fetch(`${where.comfyuiUrl}/view?${new URLSearchParams({ filename, subfolder, type })}`, { signal: AbortSignal.timeout(30_000) });
    } catch {
      return { kind: 'unavailable', status: 503, message: 'ComfyUI did not answer the download; set COMFYUI_OUTPUT_DIR to serve files directly.' };
    }
    if (res.status === 404 || res.status === 403) return { kind: 'missing' };
    if (!res.ok || !res.body) return { kind: 'unavailable', status: res.status === 400 ? 400 : 503, message: `ComfyUI answered ${res.status} for this file.` };
    return { kind: 'file', body: res.body, size: null, contentType };
  }
}
