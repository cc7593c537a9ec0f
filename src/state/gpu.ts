/**
 * GPU state: the latest reading per GPU (keyed by UUID), a bounded timeline, and the integrals
 * behind GPU-seconds and energy. Pure and synchronous; the clock is whatever the caller passes.
 */
import { NO_READINGS, normalizeBusId, type ComputeApp, type GpuHealth, type GpuRow, type MigDevice } from '../shared/gpu-readings.js';
import { RingBuffer, type RingReader } from './ring-buffer.js';
import { usageOver, type TimelinePoint, type UsageWindow } from './gpu-usage.js';

export type { TimelinePoint, UsageWindow } from './gpu-usage.js';
import type { Problem } from './health.js';
import type { CheckResult } from './readiness.js';

export interface GpuReading extends Omit<GpuRow, 'index'> {
  /** nvidia-smi's index; null for a GPU never reached whose index nothing tells. */
  index: number | null;
  /** ms epoch of the sample this reading came from. */
  sampled_at: number;
  /** Set when nvidia-smi could not reach this GPU in the latest run. */
  lost: boolean;
  lost_reason: string | null;
  /** A GPU nvidia-smi has never answered for since podscope started (its uuid is unknown, ''). */
  never_seen: boolean;
}

/** Memory health of one GPU as of a slow-period run. */
export interface GpuHealthReading extends GpuHealth {
  sampled_at: number;
}

export interface GpuTotals {
  /** Wall seconds this GPU was held while podscope watched. */
  allocated_s: number;
  /** Integral of utilization/100 over time. */
  busy_s: number;
  /** Seconds that could not be credited as busy or idle (gaps, lost, utilization null). */
  busy_unknown_s: number;
  /** Integral of power draw, in joules. */
  energy_j: number;
}

interface Track {
  reading: GpuReading;
  totals: GpuTotals;
  /** Last successful reading used as the left end of the next integration step. */
  prevT: number | null;
  prevUtil: number | null;
  prevPower: number | null;
  /** The driver's energy counter at the previous sample (NVML), for exact joules. */
  prevEnergyMj?: number | null;
}

/** An Xid a GPU reported (NVML's critical-error event). */
export interface XidEvent {
  at: number;
  index: number | null;
  uuid: string | null;
  xid: number;
}

/** How the GPUs are read, and what that backend can and cannot do. */
export interface GpuBackend {
  name: 'nvml' | 'nvidia-smi';
  /** Why this backend (the fallback's reason, or the choice that forced it). */
  reason: string;
  driver: string | null;
  /** Whether Xid events are received, and why not. */
  xid_events: { ok: true } | { ok: false; reason: string };
  /** NVML functions this driver lacks (their readings are null). */
  missing_functions: string[];
  /** The last comparison of NVML's reading with nvidia-smi's (the witness); null before the first. */
  crosscheck?: GpuCrosscheck | null;
}

export interface GpuCrosscheck {
  at: number;
  /** null when nvidia-smi could not be asked (the reason says why). */
  agreed: boolean | null;
  reason: string | null;
  mismatches: string[];
}

/** Xid events kept for answers and forensics. */
const MAX_XIDS = 200;

export class GpuState {
  private readonly xidList: XidEvent[] = [];
  /** Xids received, by GPU and code: the counter behind podscope_gpu_xid_errors_total. */
  readonly xidCounts = new Map<string, { gpu: string; uuid: string; xid: number; count: number }>();
  private readonly xidListeners: Array<(e: XidEvent) => void> = [];
  private backendInfo: GpuBackend = { name: 'nvidia-smi', reason: 'not started yet', driver: null, xid_events: { ok: false, reason: 'not started yet' }, missing_functions: [] };

  /** An Xid arrived: kept (bounded), counted, and handed to the listeners. */
  recordXid(e: XidEvent): void {
    this.xidList.push(e);
    if (this.xidList.length > MAX_XIDS) this.xidList.shift();
    const gpu = e.index === null ? '' : String(e.index);
    const key = `${gpu}|${e.uuid ?? ''}|${e.xid}`;
    const c = this.xidCounts.get(key) ?? { gpu, uuid: e.uuid ?? '', xid: e.xid, count: 0 };
    c.count++;
    this.xidCounts.set(key, c);
    for (const l of this.xidListeners) l(e);
  }

  onXid(listener: (e: XidEvent) => void): void {
    this.xidListeners.push(listener);
  }

  /** Xids received since podscope started (the newest 200), oldest first. */
  xids(): readonly XidEvent[] {
    return this.xidList;
  }

  setBackend(b: GpuBackend): void {
    this.backendInfo = { ...b, crosscheck: b.crosscheck ?? this.backendInfo.crosscheck ?? null };
  }

  setCrosscheck(c: GpuCrosscheck): void {
    this.backendInfo = { ...this.backendInfo, crosscheck: c };
  }

  get backend(): GpuBackend {
    return this.backendInfo;
  }

  private readonly tracks = new Map<string, Track>();
  readonly timeline: RingBuffer<TimelinePoint>;
  private appsByGpu = new Map<string, ComputeApp[]>();
  private healthByGpu = new Map<string, GpuHealthReading>();
  /** The GPUs `nvidia-smi -L` listed last, by uuid: the ones that should be there. */
  private listed = new Map<string, { index: number; name: string }>();
  private migByGpu = new Map<string, MigDevice[]>();
  private migAt: number | null = null;
  private appsAt: number | null = null;
  /** Pod-level allocated GPU-seconds (RUNPOD_GPU_COUNT or GPUs seen) × wall time. */
  private podAllocated = 0;
  private lastAdvance: number;
  private lastSuccessAt: number | null = null;
  driverVersion: string | null = null;

  constructor(
    private readonly opts: {
      startedAt: number;
      intervalMs: number;
      /** RUNPOD_GPU_COUNT; undefined means "the GPUs seen". */
      heldCount: number | undefined;
      timelineCapacity: number;
    },
  ) {
    this.lastAdvance = opts.startedAt;
    this.timeline = new RingBuffer<TimelinePoint>(opts.timelineCapacity, Number.POSITIVE_INFINITY, (p) => 56 + p.uuids.length * 108);
  }

  /** Largest gap between two samples that still earns busy-seconds and energy credit. */
  get maxGapMs(): number {
    return 3 * this.opts.intervalMs;
  }

  /** RUNPOD_GPU_COUNT: the GPUs the pod holds, when RunPod said. */
  get heldByRunpod(): number | undefined {
    return this.opts.heldCount;
  }

  /** GPUs held for billing: RUNPOD_GPU_COUNT, else the GPUs seen (lost ones included). */
  heldCount(): number {
    return this.opts.heldCount ?? this.tracks.size;
  }

  /**
   * Moves allocated-seconds forward to `now`. Until the GPU count is known (no RUNPOD_GPU_COUNT and
   * no sample yet) time is held back, then credited from start-up once the count is known.
   */
  advance(now: number): void {
    const held = this.heldCount();
    if (held === 0 && this.opts.heldCount === undefined) return;
    const dt = Math.max(0, now - this.lastAdvance) / 1000;
    this.podAllocated += dt * held;
    for (const t of this.tracks.values()) t.totals.allocated_s += dt;
    this.lastAdvance = Math.max(this.lastAdvance, now);
  }

  /** Records a successful run: rows for the GPUs that answered, `lost` for those that did not. */
  applySample(now: number, rows: readonly GpuRow[], lost: ReadonlyArray<{ pci_bus_id: string; reason: string; index?: number | null }> = []): void {
    const firstEver = this.tracks.size === 0;
    if (!firstEver) this.advance(now);
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.uuid);
      let track = this.tracks.get(row.uuid);
      if (!track) {
        track = {
          reading: { ...row, sampled_at: now, lost: false, lost_reason: null, never_seen: false },
          totals: { allocated_s: 0, busy_s: 0, busy_unknown_s: 0, energy_j: 0 },
          prevT: null,
          prevUtil: null,
          prevPower: null,
        };
        this.tracks.set(row.uuid, track);
      }
      this.integrate(track, now, row.utilization_percent, row.power_w, row.energy_mj ?? null);
      track.reading = { ...row, sampled_at: now, lost: false, lost_reason: null, never_seen: false };
      if (row.driver_version) this.driverVersion = row.driver_version;
    }
    for (const row of rows) {
      // A GPU first known only by its error line answers now: it is the same GPU, under its uuid.
      if (row.pci_bus_id) this.tracks.delete(busKey(row.pci_bus_id));
    }
    // A GPU nvidia-smi -L lists that the query left out is lost, not merely gone.
    for (const [uuid, track] of this.tracks) {
      if (!seen.has(uuid) && this.listed.has(uuid) && !track.reading.lost) this.markLost(track, now, ABSENT_FROM_QUERY);
    }
    const unplaced: Array<{ pci_bus_id: string; reason: string; index?: number | null }> = [];
    for (const gone of lost) {
      const track = this.findByBus(gone.pci_bus_id);
      if (track && seen.has(track.reading.uuid)) continue;
      if (track) this.markLost(track, now, gone.reason);
      else unplaced.push(gone);
    }
    this.addNeverSeen(now, rows, unplaced);
    if (firstEver) this.advance(now);
    this.lastSuccessAt = now;
    this.pushTimeline(now);
  }

  /** A run that produced no data: no busy or energy credit until the next good sample. */
  applyFailure(now: number): void {
    this.advance(now);
    for (const t of this.tracks.values()) this.breakChain(t, now);
  }

  setComputeApps(now: number, apps: readonly ComputeApp[]): void {
    const by = new Map<string, ComputeApp[]>();
    for (const a of apps) {
      const list = by.get(a.gpu_uuid) ?? [];
      list.push(a);
      by.set(a.gpu_uuid, list);
    }
    this.appsByGpu = by;
    this.appsAt = now;
  }

  /**
   * GPUs lost before podscope ever saw them answer: an entry each, keyed by bus id, with the index
   * the error line gives, or the one gap in the indexes of the GPUs that answered.
   */
  private addNeverSeen(now: number, rows: readonly GpuRow[], gone: ReadonlyArray<{ pci_bus_id: string; reason: string; index?: number | null }>): void {
    if (gone.length === 0) return;
    const taken = new Set(rows.map((r) => r.index));
    const total = rows.length + gone.length;
    const gaps = Array.from({ length: total }, (_, i) => i).filter((i) => !taken.has(i));
    const unindexed = gone.filter((g) => g.index === undefined || g.index === null);
    for (const g of gone) {
      const index = g.index ?? (unindexed.length === 1 && gaps.length === 1 ? gaps[0]! : null);
      const key = busKey(g.pci_bus_id);
      const existing = this.tracks.get(key);
      const reading: GpuReading = {
        ...(existing?.reading ?? emptyReading()),
        index,
        pci_bus_id: g.pci_bus_id,
        sampled_at: now,
        lost: true,
        lost_reason: g.reason,
        never_seen: true,
        null_reasons: { utilization_percent: `GPU lost: ${g.reason}`, memory_used_mb: `GPU lost: ${g.reason}`, memory_total_mb: 'never reached', index: index === null ? 'nvidia-smi named this GPU by bus id only' : 'inferred: the one index no answering GPU has' },
      };
      if (g.index !== undefined && g.index !== null) delete reading.null_reasons.index;
      if (existing) existing.reading = reading;
      else this.tracks.set(key, { reading, totals: { allocated_s: 0, busy_s: 0, busy_unknown_s: 0, energy_j: 0 }, prevT: null, prevUtil: null, prevPower: null });
    }
  }

  /**
   * Records what `nvidia-smi -L` lists: a listed GPU podscope has never had a reading for becomes
   * an entry (index, name, uuid) that is lost until the query answers for it.
   */
  applyListing(now: number, gpus: ReadonlyArray<{ index: number; name: string; uuid: string }>): void {
    this.listed = new Map(gpus.map((g) => [g.uuid, { index: g.index, name: g.name }]));
    for (const g of gpus) {
      const track = this.tracks.get(g.uuid);
      if (track) {
        if (track.reading.never_seen) track.reading = { ...track.reading, sampled_at: now };
        continue;
      }
      // The GPU an error line named by its bus id and index: the same GPU, now with its uuid and name.
      const byBus = [...this.tracks].find(([key, t]) => key.startsWith('bus:') && t.reading.index === g.index);
      if (byBus) {
        const [key, found] = byBus;
        this.tracks.delete(key);
        found.reading = { ...found.reading, uuid: g.uuid, name: g.name, sampled_at: now };
        this.tracks.set(g.uuid, found);
        continue;
      }
      const reading: GpuReading = {
        ...emptyReading(),
        index: g.index,
        uuid: g.uuid,
        name: g.name,
        sampled_at: now,
        lost: true,
        lost_reason: ABSENT_FROM_QUERY,
        never_seen: true,
        null_reasons: { utilization_percent: `GPU lost: ${ABSENT_FROM_QUERY}`, memory_used_mb: `GPU lost: ${ABSENT_FROM_QUERY}`, memory_total_mb: 'never reached' },
      };
      this.tracks.set(g.uuid, { reading, totals: { allocated_s: 0, busy_s: 0, busy_unknown_s: 0, energy_j: 0 }, prevT: null, prevUtil: null, prevPower: null });
    }
  }

  /** Records one memory-health run; GPUs absent from it keep no stale health. */
  setHealth(now: number, rows: ReadonlyArray<GpuHealth & { uuid: string }>): void {
    const by = new Map<string, GpuHealthReading>();
    for (const { uuid, ...h } of rows) by.set(uuid, { ...h, sampled_at: now });
    this.healthByGpu = by;
  }

  health(uuid: string): GpuHealthReading | null {
    return this.healthByGpu.get(uuid) ?? null;
  }

  /** Records the MIG devices of each GPU in MIG mode. */
  setMig(now: number, byUuid: ReadonlyMap<string, MigDevice[]>): void {
    this.migByGpu = new Map(byUuid);
    this.migAt = now;
  }

  mig(uuid: string): MigDevice[] {
    return this.migByGpu.get(uuid) ?? [];
  }

  get migSampledAt(): number | null {
    return this.migAt;
  }

  private findByBus(bus: string): Track | undefined {
    const norm = normalizeBusId(bus);
    for (const t of this.tracks.values()) if (t.reading.pci_bus_id && normalizeBusId(t.reading.pci_bus_id) === norm) return t;
    return undefined;
  }

  private markLost(track: Track, now: number, reason: string): void {
    this.breakChain(track, now);
    const r = track.reading;
    track.reading = {
      ...r,
      sampled_at: now,
      lost: true,
      lost_reason: reason,
      utilization_percent: null,
      memory_utilization_percent: null,
      memory_used_mb: null,
      memory_free_mb: null,
      temperature_c: null,
      power_w: null,
      power_instant_w: null,
      sm_clock_mhz: null,
      null_reasons: { ...r.null_reasons, utilization_percent: `GPU lost: ${reason}` },
    };
  }

  /** Ends the current integration chain; the interval since the last good sample is unknown. */
  private breakChain(track: Track, now: number): void {
    if (track.prevT !== null) track.totals.busy_unknown_s += Math.max(0, now - track.prevT) / 1000;
    track.prevT = null;
    track.prevUtil = null;
    track.prevPower = null;
  }

  /** Left-rectangle step from the previous good sample to this one, when the gap is short enough. */
  private integrate(track: Track, now: number, util: number | null, power: number | null, energyMj: number | null = null): void {
    if (track.prevT !== null) {
      const dtMs = now - track.prevT;
      const dt = Math.max(0, dtMs) / 1000;
      if (dtMs > this.maxGapMs) {
        track.totals.busy_unknown_s += dt;
      } else {
        if (track.prevUtil !== null) track.totals.busy_s += (track.prevUtil / 100) * dt;
        else track.totals.busy_unknown_s += dt;
      }
      // The driver's energy counter, where it has one, is exact even across a gap; else power × time.
      const counted = energyMj !== null && track.prevEnergyMj !== null && track.prevEnergyMj !== undefined && energyMj >= track.prevEnergyMj;
      if (counted) track.totals.energy_j += (energyMj - track.prevEnergyMj!) / 1000;
      else if (dtMs <= this.maxGapMs && track.prevPower !== null) track.totals.energy_j += track.prevPower * dt;
    }
    track.prevT = now;
    track.prevUtil = util;
    track.prevPower = power;
    track.prevEnergyMj = energyMj;
  }

  private pushTimeline(now: number): void {
    const readings = this.readings();
    this.timeline.push({
      t: now,
      uuids: readings.map((r) => r.uuid),
      used_mb: readings.map((r) => r.memory_used_mb),
      used_max_mb: readings.map((r) => r.memory_used_max_mb ?? r.memory_used_mb),
      util: readings.map((r) => r.utilization_percent),
      power_w: readings.map((r) => r.power_w),
      temperature_c: readings.map((r) => r.temperature_c),
    });
  }

  /** Latest readings, ordered by index. */
  readings(): GpuReading[] {
    return [...this.tracks.values()].map((t) => t.reading).sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity) || (a.pci_bus_id ?? '').localeCompare(b.pci_bus_id ?? '') || a.uuid.localeCompare(b.uuid));
  }

  /**
   * Wall seconds since the last {@link advance} that will be credited as held, read without moving
   * the state (a scrape reads, never writes). Zero while the GPU count is not known yet.
   */
  private unadvanced(now: number | undefined): number {
    if (now === undefined || (this.heldCount() === 0 && this.opts.heldCount === undefined)) return 0;
    return Math.max(0, now - this.lastAdvance) / 1000;
  }

  /** A GPU's totals as of the last sample, or as of `now` for the allocated seconds when given. */
  totals(uuid: string, now?: number): GpuTotals | undefined {
    const t = this.tracks.get(uuid);
    return t ? { ...t.totals, allocated_s: t.totals.allocated_s + this.unadvanced(now) } : undefined;
  }

  /** Pod GPU-seconds (what RunPod bills) as of the last {@link advance}, or as of `now` when given. */
  podGpuSeconds(now?: number): number {
    return this.podAllocated + this.unadvanced(now) * this.heldCount();
  }

  computeApps(uuid: string): ComputeApp[] {
    return this.appsByGpu.get(uuid) ?? [];
  }

  get computeAppsAt(): number | null {
    return this.appsAt;
  }

  get lastSuccess(): number | null {
    return this.lastSuccessAt;
  }

  /**
   * The `gpu` check of /ready: sampling works when the newest sample is recent (three periods, or
   * one run's timeout and a period) and no error problem of the GPU collector is raised.
   */
  samplingCheck(now: number, problems: readonly Problem[], runTimeoutMs: number): CheckResult {
    const errors = problems.filter((p) => p.component === 'gpu' && p.severity === 'error');
    if (errors.length > 0) return { ok: false, message: `GPU sampling: ${errors.map((p) => p.message).join('; ')}` };
    if (this.lastSuccessAt === null) return { ok: false, message: 'no GPU sample yet', starting: true };
    const age = now - this.lastSuccessAt;
    const limit = Math.max(3 * this.opts.intervalMs, runTimeoutMs + this.opts.intervalMs);
    if (age > limit) return { ok: false, message: `the newest GPU sample is ${Math.round(age / 1000)} s old` };
    return { ok: true };
  }

  get gpuCountSeen(): number {
    return this.tracks.size;
  }

  /**
   * Forgets GPUs not seen for `maxAgeMs` (a GPU that disappears stops being exported), except the
   * ones `nvidia-smi -L` still lists: those stay, lost.
   */
  forgetOlderThan(now: number, maxAgeMs: number): void {
    for (const [uuid, t] of this.tracks) if (now - t.reading.sampled_at > maxAgeMs && !this.listed.has(uuid)) this.tracks.delete(uuid);
  }

  /** GPU-seconds, busy GPU-seconds and peak VRAM between t0 and t1 (ms epoch), of every GPU or only those uuids. */
  usageBetween(t0: number, t1: number, only?: ReadonlySet<string>): UsageWindow {
    return usageOver(this.timeline, this.heldCount(), this.maxGapMs, t0, t1, only);
  }
}

const ABSENT_FROM_QUERY = 'listed by nvidia-smi -L but absent from its --query-gpu answer';

/** The key of a GPU known only by its bus id. */
function busKey(bus: string): string {
  return `bus:${normalizeBusId(bus)}`;
}

/** A reading with nothing known, for a GPU never reached. */
function emptyReading(): GpuReading {
  return {
    index: null,
    uuid: '',
    name: 'unknown GPU',
    pci_bus_id: null,
    driver_version: null,
    pstate: null,
    persistence_mode: null,
    mig_mode: null,
    ...NO_READINGS,
    null_reasons: {},
    sampled_at: 0,
    lost: true,
    lost_reason: null,
    never_seen: true,
  };
}


/** The GPU state as readers see it: readings, totals and the timeline, never a sample applied. */
export interface GpuReader
  extends Readonly<Pick<
    GpuState,
    | 'driverVersion'
    | 'maxGapMs'
    | 'heldByRunpod'
    | 'heldCount'
    | 'readings'
    | 'totals'
    | 'podGpuSeconds'
    | 'computeApps'
    | 'computeAppsAt'
    | 'lastSuccess'
    | 'samplingCheck'
    | 'gpuCountSeen'
    | 'health'
    | 'mig'
    | 'migSampledAt'
    | 'usageBetween'
    | 'xids'
    | 'backend'
  >> {
  readonly xidCounts: ReadonlyMap<string, { gpu: string; uuid: string; xid: number; count: number }>;
  readonly timeline: RingReader<TimelinePoint>;
}
