/**
 * One vocabulary for the pod's condition (/ready and /debug/status answer from the same rule), and
 * the problem journal: a problem is logged when it starts, at a slow interval while it lasts, and
 * when it ends.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { Scrubber } from '../../src/secrets.js';
import { HealthBoard } from '../../src/state/health.js';
import { readinessReport, type CheckResult } from '../../src/state/readiness.js';
import { ProblemJournal } from '../../src/collectors/problems.js';
import { loadConfig } from '../../src/config.js';
import { PodState } from '../../src/state/pod.js';
import { statusView } from '../../src/views/status.js';
import { gpuRows } from '../helpers/gpu-rows.js';

const T0 = Date.parse('2026-11-23T12:00:00.000Z');
const OK: CheckResult = { ok: true };
const STARTING: CheckResult = { ok: false, message: 'not yet', starting: true };
const BROKEN: CheckResult = { ok: false, message: 'down' };

function readiness(comfyui: CheckResult, websocket: CheckResult, gpu: CheckResult) {
  return { report: (problems: Parameters<typeof readinessReport>[1] = []) => readinessReport({ comfyui: () => comfyui, websocket: () => websocket, gpu: () => gpu }, problems) };
}

describe('the pod condition', () => {
  it('is ok when every check passes and no error problem is raised', () => {
    expect(readiness(OK, OK, OK).report([]).status).toBe('ok');
  });

  it('is starting while the only failing checks are still coming up', () => {
    expect(readiness(STARTING, STARTING, OK).report([])).toMatchObject({ status: 'starting', ready: false });
  });

  it('is degraded when one check is broken, even while others are still starting', () => {
    expect(readiness(STARTING, STARTING, BROKEN).report([]).status).toBe('degraded');
  });

  it('is degraded by an error problem while every check passes, and names it', () => {
    const problem = { component: 'host', code: 'DISK_NEARLY_FULL', message: 'full', since: '', severity: 'error' } as const;
    expect(readiness(OK, OK, OK).report([problem])).toMatchObject({ status: 'degraded', ready: false, problems: [{ component: 'host', code: 'DISK_NEARLY_FULL', message: 'full' }] });
  });

  it('is not changed by a warning problem', () => {
    const warning = { component: 'logs', code: 'LOG_FILE_MISSING', message: 'no file', since: '', severity: 'warning' } as const;
    expect(readiness(OK, OK, OK).report([warning])).toMatchObject({ status: 'ok', ready: true, problems: [] });
  });

  it('says which check threw instead of throwing', () => {
    const report = readinessReport({
      comfyui: () => {
        throw new Error('boom');
      },
      websocket: () => OK,
      gpu: () => OK,
    });
    expect(report.checks.comfyui).toBe('comfyui check failed: boom');
  });
});

describe('/debug/status and /ready use one vocabulary', () => {
  /** ComfyUI not reached yet, or up; the GPU without a sample yet, sampled, or lost. */
  type Comfy = 'starting' | 'up';
  type Gpu = 'starting' | 'sampled' | 'lost';
  const cases: Array<[string, Comfy, Gpu, 'error' | null, string, string]> = [
    ['ComfyUI not reached yet', 'starting', 'starting', null, 'starting', 'starting'],
    ['ComfyUI not reached yet and the GPU broken', 'starting', 'lost', null, 'degraded', 'degraded'],
    ['everything up, nothing running', 'up', 'sampled', null, 'ok', 'idle'],
    ['everything up and an error problem', 'up', 'sampled', 'error', 'degraded', 'degraded'],
  ];
  it.each(cases)('%s: /ready %s… and /debug/status agree', (_name, comfyui, gpu, problem, ready, status) => {
    const config = loadConfig({ COMFYUI_URL: 'http://127.0.0.1:8188' }, 'h');
    const state = new PodState({ config, version: 't', scrubber: new Scrubber([]), env: {}, now: () => T0 });
    if (comfyui === 'up') {
      state.comfy.httpAnswered(T0);
      state.comfy.connected('podscope-test');
    }
    if (gpu === 'sampled') state.gpu!.applySample(T0, gpuRows(1));
    if (gpu === 'lost') state.health.raise('gpu', 'GPU_LOST', 'GPU 0 is lost');
    if (problem) state.health.raise('comfyui', 'STALLED', 'a job shows no sign of life', problem);
    expect(state.condition().status).toBe(ready);
    expect(statusView(state).status).toBe(status);
  });
});

function journalRig(remindMs = 300_000) {
  let now = T0;
  const clock = () => now;
  const health = new HealthBoard(clock);
  const lines: Array<{ level: string; message: string; data?: Record<string, unknown> }> = [];
  const logger = createLogger({ level: 'info', podId: 'p', environment: 'production', scrubber: new Scrubber([]), sinks: [{ write: (l) => lines.push(JSON.parse(l)) }] });
  const journal = new ProblemJournal({ health, logger, remindMs, now: clock });
  const abort = new AbortController();
  journal.start(abort.signal);
  return {
    health,
    journal,
    lines,
    advance: (ms: number) => {
      now += ms;
      journal.remind();
    },
    stop: () => abort.abort(),
  };
}

describe('the problem journal', () => {
  it('logs a problem once when it starts, at the level of its severity', () => {
    const r = journalRig();
    r.health.raise('gpu', 'NVIDIA_SMI_TIMEOUT', 'nvidia-smi did not answer within 5000 ms');
    r.health.raise('gpu', 'NVIDIA_SMI_TIMEOUT', 'nvidia-smi did not answer within 5000 ms again');
    r.health.raise('logs', 'LOG_FILE_MISSING', 'no log file', 'warning');
    expect(r.lines.map((l) => [l.level, l.message])).toEqual([
      ['error', 'problem: gpu NVIDIA_SMI_TIMEOUT: nvidia-smi did not answer within 5000 ms'],
      ['warn', 'problem: logs LOG_FILE_MISSING: no log file'],
    ]);
    expect(r.lines[0]!.data).toMatchObject({ component: 'gpu', code: 'NVIDIA_SMI_TIMEOUT', severity: 'error', since: '2026-11-23T12:00:00.000Z' });
    r.stop();
  });

  it('logs it again after each interval while it lasts, with the newest message', () => {
    const r = journalRig(300_000);
    r.health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'connection refused', 'warning');
    r.advance(299_000);
    expect(r.lines).toHaveLength(1);
    r.health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'connection refused (still)', 'warning');
    r.advance(1_000);
    r.advance(300_000);
    expect(r.lines.map((l) => l.message)).toEqual([
      'problem: comfyui COMFYUI_UNREACHABLE: connection refused',
      'problem continues (5 min so far): comfyui COMFYUI_UNREACHABLE: connection refused (still)',
      'problem continues (10 min so far): comfyui COMFYUI_UNREACHABLE: connection refused (still)',
    ]);
    r.stop();
  });

  it('logs once at info when the problem ends, saying how long it lasted', () => {
    const r = journalRig();
    r.health.raise('websocket', 'WEBSOCKET_DOWN', 'closed');
    r.advance(42_000);
    r.health.clear('websocket');
    r.health.clear('websocket');
    expect(r.lines.map((l) => [l.level, l.message]).slice(1)).toEqual([['info', 'problem ended after 42 s: websocket WEBSOCKET_DOWN']]);
    r.stop();
  });

  it('logs a change of severity once', () => {
    const r = journalRig();
    r.health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'refused', 'warning');
    r.health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'refused', 'error');
    r.health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'refused', 'error');
    expect(r.lines.map((l) => [l.level, l.message])).toEqual([
      ['warn', 'problem: comfyui COMFYUI_UNREACHABLE: refused'],
      ['error', 'problem now error: comfyui COMFYUI_UNREACHABLE: refused'],
    ]);
    r.stop();
  });

  it('logs the problems raised before it started', () => {
    const now = T0;
    const health = new HealthBoard(() => now);
    health.raise('host', 'DISK_NEARLY_FULL', 'full');
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', podId: 'p', environment: 'production', scrubber: new Scrubber([]), sinks: [{ write: (l) => lines.push(l) }] });
    const abort = new AbortController();
    new ProblemJournal({ health, logger, remindMs: 60_000, now: () => now }).start(abort.signal);
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(['problem: host DISK_NEARLY_FULL: full']);
    abort.abort();
  });

  it('logs nothing more once stopped', () => {
    const r = journalRig();
    r.stop();
    r.health.raise('gpu', 'GPU_LOST', 'GPU 3 is lost');
    expect(r.lines).toEqual([]);
  });
});
