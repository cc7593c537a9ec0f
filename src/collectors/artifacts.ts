/**
 * The artifacts collector: records every finished job's outputs in the ledger and checks each
 * file on disk (size, existence, modification time) when COMFYUI_OUTPUT_DIR is set, again every
 * 30 s for the newest ones. Temp outputs written before a ComfyUI restart are marked wiped.
 */
import type { ArtifactLedger, Artifact } from '../state/artifacts.js';
import type { JobTracker } from '../state/jobs.js';
import { directoryFor, nameProblem, resolveInside } from '../sources/artifact-files.js';
import type { Collector } from './collector.js';

export class ArtifactCollector implements Collector {
  readonly name = 'artifacts';
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly opts: { ledger: ArtifactLedger; tracker: JobTracker; outputDir: string | undefined; now?: () => number },
  ) {
    opts.tracker.onFinish((job) => {
      const added = opts.ledger.addJob(job, (opts.now ?? Date.now)());
      void this.check(added);
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.check(this.opts.ledger.newest(200)), 30_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.checking;
  }

  /** ComfyUI restarted: its temp directory was wiped. */
  comfyRestarted(at: number): void {
    this.opts.ledger.markTempWiped(at);
  }

  /** Stats each artifact's file (never two checks at once). */
  check(items: Artifact[]): Promise<void> {
    const dir = this.opts.outputDir;
    if (!dir || items.length === 0) return Promise.resolve();
    const run = async () => {
      for (const a of items) {
        if (a.wiped || (a.type !== 'output' && a.type !== 'temp') || nameProblem(a.filename, a.subfolder)) continue;
        const facts = await resolveInside(directoryFor(dir, a.type), a.subfolder, a.filename);
        a.exists = facts !== null;
        a.size_bytes = facts?.size ?? null;
        a.mtime = facts ? facts.mtime.toISOString() : null;
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
