/**
 * History discovery: how the ComfyUI collector learns outcomes it did not watch happen. A prompt
 * that left the queue is looked up in /history; a job whose outcome came from frames or the tap
 * still gets ComfyUI's record; prompts podscope never saw in the queue (a cached resubmit finishes
 * in milliseconds, between two looks) are found in the newest finished ones, through ComfyUI's
 * Jobs API where it has one, else /history.
 */
import type { Config } from '../config.js';
import type { ComfyState } from '../state/comfy.js';
import { isRecord } from '../state/jobs.js';
import type { HttpResult } from '../sources/http-json.js';
import { applyHistoryEntryAnswer, applyHistoryListAnswer } from './comfy-inputs.js';

/** GETs a path of ComfyUI as JSON (the collector's, which also records the answer). */
export type ComfyGet = (path: string, maxBytes: number) => Promise<HttpResult>;

const HISTORY_BYTES = 64 * 1024 * 1024;

export class HistoryDiscovery {
  /** Status frames since /history was last read: each prompt makes at least three. */
  private statusFrames = 0;
  private baselined = false;
  /** Whether ComfyUI serves the Jobs API (null until probed; probed again after a restart). */
  private jobsApiSeen: boolean | null = null;

  constructor(
    private readonly opts: {
      config: Pick<Config, 'jobHistory'>;
      comfy: ComfyState;
      get: ComfyGet;
      now: () => number;
    },
  ) {}

  /** Whether ComfyUI was found to serve the Jobs API (null: not probed yet). */
  get jobsApi(): boolean | null {
    return this.jobsApiSeen;
  }

  /** A status frame arrived: something in the queue changed. */
  statusFrame(): void {
    this.statusFrames++;
  }

  /** ComfyUI restarted: it may be another version, so the Jobs API is probed again. */
  restarted(): void {
    this.jobsApiSeen = null;
  }

  /** Asks /history for prompts that left the queue; those it does not know are missing (lost after two looks, or at once after a restart). */
  async resolveLeft(left: readonly string[], restarted: boolean): Promise<void> {
    for (const id of left.slice(0, 50)) {
      const h = await this.opts.get(`/history/${encodeURIComponent(id)}`, HISTORY_BYTES);
      if (!h.ok) return;
      applyHistoryEntryAnswer(this.opts.comfy.tracker, this.opts.now(), id, h.body, { restarted });
    }
  }

  /**
   * Jobs whose outcome came from frames or the tap still get ComfyUI's record: it carries the
   * graph and extra_data (so the job id) when the prompt was too quick to be seen in the queue,
   * and the outputs.
   */
  async completeFromHistory(): Promise<void> {
    const tracker = this.opts.comfy.tracker;
    for (const id of tracker.withoutHistory(20)) {
      const h = await this.opts.get(`/history/${encodeURIComponent(id)}`, HISTORY_BYTES);
      if (!h.ok) return;
      applyHistoryEntryAnswer(tracker, this.opts.now(), id, h.body);
    }
  }

  /**
   * Reads the newest finished prompts for ones podscope never saw in the queue. The first read
   * after start-up imports recent jobs without counting them in metrics; later reads happen only
   * after queue activity.
   */
  async discover(): Promise<void> {
    const { config, comfy } = this.opts;
    const frames = this.statusFrames;
    if (this.baselined && comfy.wsConnected && frames === 0) return;
    // Each prompt makes at least three status frames, so `frames + 2` entries cover every prompt that
    // can have finished since the last look, however many a burst brings (up to the history kept).
    const n = !this.baselined ? config.jobHistory : Math.min(config.jobHistory, comfy.wsConnected ? Math.max(4, frames + 2) : Math.max(16, frames + 2));
    this.statusFrames = 0;
    const silent = !this.baselined;
    if (this.jobsApiSeen !== false && (await this.discoverFromJobsApi(n, silent))) {
      this.baselined = true;
      return;
    }
    const h = await this.opts.get(`/history?max_items=${n}`, HISTORY_BYTES);
    if (!h.ok) return;
    applyHistoryListAnswer(comfy.tracker, this.opts.now(), h.body, silent);
    this.baselined = true;
  }

  /**
   * With ComfyUI's Jobs API, the list of finished prompts is light (no graphs); only the ones
   * podscope does not know yet are then read from /history/{id}. Returns false when there is no
   * such API (ComfyUI before it), so /history is used instead.
   */
  private async discoverFromJobsApi(n: number, silent: boolean): Promise<boolean> {
    const tracker = this.opts.comfy.tracker;
    const r = await this.opts.get(`/api/jobs?status=completed,failed,cancelled&sort_by=created_at&sort_order=desc&limit=${n}`, 16 * 1024 * 1024);
    const jobs = r.ok && isRecord(r.body) && Array.isArray(r.body.jobs) ? r.body.jobs : null;
    if (!jobs) {
      if (this.jobsApiSeen === null || (!r.ok && r.code === 'HTTP_STATUS')) this.jobsApiSeen = false;
      return false;
    }
    this.jobsApiSeen = true;
    const ids = jobs.map((j) => (isRecord(j) && typeof j.id === 'string' ? j.id : null)).filter((id): id is string => id !== null && !tracker.isFinished(id));
    for (const id of ids) {
      const h = await this.opts.get(`/history/${encodeURIComponent(id)}`, HISTORY_BYTES);
      if (h.ok) applyHistoryEntryAnswer(tracker, this.opts.now(), id, h.body, { silent });
    }
    return true;
  }
}
