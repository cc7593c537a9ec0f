/**
 * Liveness: what the ComfyUI collector concludes from silence. A ComfyUI that exited loses its
 * jobs; a websocket down while HTTP answers, and a running job with no sign of life, are problems.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ComfyState } from '../state/comfy.js';
import type { HealthWriter } from '../state/health.js';
import { iso } from '../format.js';

type LivenessConfig = Pick<Config, 'comfyuiGoneS' | 'stallS' | 'wsPingMs'>;

/**
 * A ComfyUI whose port refuses connections and whose websocket is closed has exited: its jobs
 * will not finish. They become lost after PODSCOPE_COMFYUI_GONE_S (a restart that comes back
 * sooner loses them at once). One that merely does not answer in time may be busy: its jobs
 * are lost only after the stall limit.
 */
export function loseJobsOfGoneComfy(comfy: ComfyState, config: LivenessConfig, logger: Logger, now: number): void {
  const failingSince = comfy.httpFailingSince;
  if (comfy.reachedAt === null || failingSince === null || comfy.tracker.unfinished().length === 0) return;
  const refused = comfy.refusedSince !== null && !comfy.wsConnected && now - comfy.refusedSince >= config.comfyuiGoneS * 1000;
  const silent = now - failingSince > config.stallS * 1000;
  if (!refused && !silent) return;
  const since = iso(failingSince);
  const reason = refused
    ? `ComfyUI stopped while this job was queued or running: its port has refused connections since ${since} and its websocket is closed`
    : `ComfyUI has not answered since ${since} (${comfy.lastHttpError ?? 'no answer'}), longer than PODSCOPE_STALL_S`;
  for (const job of comfy.tracker.loseUnfinished(now, reason)) logger.warn({ job_id: job.job_id, data: { prompt_id: job.prompt_id } }, `job ${job.job_id} lost: ${reason}`);
}

/** A websocket down while HTTP answers, and a running job with no sign of life, become problems. */
export function checkLiveness(comfy: ComfyState, config: LivenessConfig, health: HealthWriter, now: number): void {
  // HTTP answers but the websocket stays down: live progress and log lines are missing.
  const down = comfy.wsDownSince;
  if (comfy.wsEverConnected && down !== null && comfy.httpFailingSince === null && now - down > 2 * config.wsPingMs) {
    health.raise('websocket', 'WEBSOCKET_DOWN', `the websocket to ComfyUI has been down for ${Math.round((now - down) / 1000)} s while HTTP answers: ${comfy.wsLastCloseReason ?? 'closed'}`);
  } else if (comfy.wsConnected) {
    health.clear('websocket', 'WEBSOCKET_DOWN');
  }
  const job = comfy.tracker.running();
  if (!job || now - job.last_activity < config.stallS * 1000) {
    health.clear('comfyui', 'STALLED');
    return;
  }
  const node = job.current_node ? job.nodes.get(job.current_node) : undefined;
  const where = node ? `node ${node.node_id} (${node.class_type})` : 'an unknown node';
  const cause = comfy.httpFailingSince !== null ? 'ComfyUI does not answer over HTTP' : !comfy.wsConnected ? 'the websocket is down' : 'no progress, log line or queue change';
  health.raise('comfyui', 'STALLED', `job ${job.job_id} has shown no sign of life for ${Math.round((now - job.last_activity) / 1000)} s at ${where}: ${cause}`);
}
