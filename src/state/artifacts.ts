/**
 * The artifacts ledger: every output ComfyUI reports for a job (images, animated images, video,
 * audio, 3D, any list of dicts with `filename` and `type`), bounded, with what the disk says of
 * each file when podscope knows ComfyUI's output directory.
 */
import { RingBuffer, type RingReader } from './ring-buffer.js';
import { isRecord, type ReadonlyJob } from './jobs.js';

export interface Artifact {
  /** The ComfyUI instance that wrote it. */
  instance: string;
  job_id: string;
  prompt_id: string;
  node_id: string;
  filename: string;
  subfolder: string;
  type: string;
  kind: string;
  format: string | null;
  /** Replayed by a cached node: the file was written by an earlier job. */
  from_cache: boolean;
  /** That earlier job, when podscope saw it. */
  produced_by_job: string | null;
  /** A temp file written before ComfyUI restarted (ComfyUI wipes temp at start and exit). */
  wiped: boolean;
  size_bytes: number | null;
  exists: boolean | null;
  mtime: string | null;
  at: number;
}

/** What one artifact object costs besides its strings (V8 object header, numbers, booleans). */
const ARTIFACT_OVERHEAD = 160;

/** One output file opened for a download, or why it could not be. */
export type OpenedFile =
  | { kind: 'file'; body: ReadableStream<Uint8Array>; size: number | null; contentType: string }
  | { kind: 'refused'; problem: string }
  | { kind: 'missing' }
  | { kind: 'unavailable'; status: 400 | 503; message: string };

/**
 * Output files for downloads: the only disk and network reads behind a route, done by a service
 * the composition root (main.ts) gives the state, never by the route itself.
 */
export interface ArtifactFiles {
  /** One file of the named instance (its output or temp directory, or its /view). */
  open(instance: string, type: 'output' | 'temp', subfolder: string, filename: string): Promise<OpenedFile>;
}

/** Reads the outputs of one node's ui dict. */
export function artifactsFromUi(ui: Record<string, unknown>): Array<Pick<Artifact, 'filename' | 'subfolder' | 'type' | 'kind' | 'format'>> {
  const animated = Array.isArray(ui.animated) && ui.animated.some((a) => a === true);
  const out: Array<Pick<Artifact, 'filename' | 'subfolder' | 'type' | 'kind' | 'format'>> = [];
  for (const [key, value] of Object.entries(ui)) {
    if (!Array.isArray(value)) continue;
    for (const item of value) {
      if (key === 'result' && typeof item === 'string' && /\.[A-Za-z0-9]{2,5}$/.test(item)) {
        // 3D nodes report `{"result": [file, camera]}` with the file as a path under output/.
        const slash = item.lastIndexOf('/');
        out.push({ filename: item.slice(slash + 1), subfolder: slash >= 0 ? item.slice(0, slash) : '', type: 'output', kind: '3d', format: null });
        continue;
      }
      if (!isRecord(item) || typeof item.filename !== 'string' || typeof item.type !== 'string') continue;
      const format = typeof item.format === 'string' ? item.format : null;
      out.push({
        filename: item.filename,
        subfolder: typeof item.subfolder === 'string' ? item.subfolder : '',
        type: item.type,
        kind: kindOf(key, item.filename, format, animated),
        format,
      });
    }
  }
  return out;
}

function kindOf(key: string, filename: string, format: string | null, animated: boolean): string {
  if (key === 'images') return animated ? 'animated' : 'image';
  if (key === 'gifs' || key === 'videos' || key === 'video') {
    if (format?.startsWith('video/') || /\.(mp4|webm|mov|mkv)$/i.test(filename)) return 'video';
    return 'animated';
  }
  if (key === 'audio') return 'audio';
  if (key === '3d' || key === 'mesh' || /\.(glb|gltf|obj|ply|stl)$/i.test(filename)) return '3d';
  return key.replace(/[^a-z0-9_]/gi, '').slice(0, 32) || 'file';
}

export class ArtifactLedger {
  readonly ring: RingBuffer<Artifact>;
  /** Artifacts produced by kind, for metrics. */
  readonly producedByKind = new Map<string, number>();

  constructor(capacity: number) {
    // Bytes held, estimated: the strings (two bytes a character) and the object around them.
    this.ring = new RingBuffer<Artifact>(capacity, Number.POSITIVE_INFINITY, (a) => ARTIFACT_OVERHEAD + 2 * (a.instance.length + a.job_id.length + a.prompt_id.length + a.node_id.length + a.filename.length + a.subfolder.length + a.type.length + a.kind.length + (a.format?.length ?? 0) + (a.mtime?.length ?? 0)));
  }

  /** Adds a finished job's outputs; returns the new entries (to stat on disk). */
  addJob(job: ReadonlyJob, now: number): Artifact[] {
    const added: Artifact[] = [];
    for (const o of job.outputs) {
      for (const a of artifactsFromUi(o.ui)) {
        const earlier = o.cached ? this.find(job.instance, a.filename, a.subfolder, a.type) : undefined;
        const artifact: Artifact = {
          ...a,
          instance: job.instance,
          job_id: job.job_id,
          prompt_id: job.prompt_id,
          node_id: o.node_id,
          from_cache: o.cached,
          produced_by_job: earlier && earlier.prompt_id !== job.prompt_id ? earlier.job_id : null,
          wiped: false,
          size_bytes: null,
          exists: null,
          mtime: null,
          at: now,
        };
        this.ring.push(artifact);
        added.push(artifact);
        if (!o.cached) this.producedByKind.set(artifact.kind, (this.producedByKind.get(artifact.kind) ?? 0) + 1);
      }
    }
    return added;
  }

  private find(instance: string, filename: string, subfolder: string, type: string): Artifact | undefined {
    return this.ring.select((a) => a.instance === instance && a.filename === filename && a.subfolder === subfolder && a.type === type && !a.from_cache, 1)[0]?.value;
  }

  forJob(promptId: string): Artifact[] {
    return this.ring.select((a) => a.prompt_id === promptId, Number.POSITIVE_INFINITY).map((e) => e.value);
  }

  /** The newest `n`, newest first; only one instance's with `instance`. */
  newest(n: number, instance?: string): Artifact[] {
    if (instance === undefined) return this.ring.newest(n).map((e) => e.value);
    return this.ring
      .select((a) => a.instance === instance, n)
      .map((e) => e.value)
      .reverse();
  }

  /** The instance's ComfyUI restarted: its temp files written before then are gone. */
  markTempWiped(before: number, instance: string): void {
    for (const { value: a } of this.ring.toArray()) {
      if (a.type === 'temp' && a.instance === instance && a.at < before) {
        a.wiped = true;
        a.exists = false;
      }
    }
  }
}

/** The ledger as readers see it: the artifacts remembered, never one added or changed. */
export interface ArtifactReader extends Readonly<Pick<ArtifactLedger, 'forJob' | 'newest'>> {
  readonly ring: RingReader<Artifact>;
  readonly producedByKind: ReadonlyMap<string, number>;
}
