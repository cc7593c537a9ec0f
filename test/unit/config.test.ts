import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config.js';

function problemFor(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, 'host-x');
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('has the contract defaults when nothing is set', () => {
    const c = loadConfig({}, 'host-x');
    expect(c).toMatchObject({
      port: 9188,
      host: '0.0.0.0',
      token: undefined,
      env: 'production',
      comfyuiUrl: 'http://127.0.0.1:8188',
      nvidiaSmi: 'nvidia-smi',
      gpuIntervalMs: 1000,
      jobIdKey: 'job_id',
      logLevel: 'info',
      podId: 'host-x',
      gpuCount: undefined,
      gpuEnabled: true,
    });
  });

  it('is frozen', () => {
    const c = loadConfig({}, 'h');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes the pod id and GPU count from RunPod', () => {
    const c = loadConfig({ RUNPOD_POD_ID: 'abc123', RUNPOD_GPU_COUNT: '2' }, 'h');
    expect(c.podId).toBe('abc123');
    expect(c.gpuCount).toBe(2);
  });

  it('treats RUNPOD_GPU_COUNT=0 as a pod without GPU', () => {
    expect(loadConfig({ RUNPOD_GPU_COUNT: '0' }, 'h').gpuEnabled).toBe(false);
  });

  it('drops a trailing slash from COMFYUI_URL', () => {
    expect(loadConfig({ COMFYUI_URL: 'http://10.0.0.1:8188/' }, 'h').comfyuiUrl).toBe('http://10.0.0.1:8188');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['PODSCOPE_PORT', 'abc', /integer/],
    ['PODSCOPE_PORT', '70000', /at most 65535/],
    ['PODSCOPE_HOST', 'bad host!', /IP address or host name/],
    ['PODSCOPE_TOKEN', 'short', /8 to 4096 printable/],
    ['PODSCOPE_ENV', 'staging', /production.*development/],
    ['COMFYUI_URL', 'ftp://x', /http/],
    ['COMFYUI_URL', 'not a url', /http/],
    ['PODSCOPE_NVIDIA_SMI', '   ', /empty/],
    ['PODSCOPE_GPU', 'maybe', /on.*off/],
    ['PODSCOPE_GPU_INTERVAL_MS', '10', /at least 100/],
    ['PODSCOPE_GPU_TIMEOUT_MS', '1.5', /integer/],
    ['PODSCOPE_GPU_APPS_INTERVAL_MS', '-1', /at least/],
    ['PODSCOPE_GPU_HEALTH_INTERVAL_MS', '10', /at least 1000/],
    ['PODSCOPE_GPU_SAMPLES', '5', /at least 10/],
    ['PODSCOPE_JOB_ID_KEY', 'has space', /letters, digits/],
    ['PODSCOPE_JOB_HISTORY', '0', /at least 1/],
    ['PODSCOPE_ARTIFACTS', 'many', /integer/],
    ['PODSCOPE_EVENTS', '10', /at least 100/],
    ['PODSCOPE_STALL_S', '1', /at least 5/],
    ['PODSCOPE_COMFYUI_GONE_S', '0', /at least 1/],
    ['PODSCOPE_PROBLEM_REMIND_S', '5', /at least 10/],
    ['PODSCOPE_COMFYUI_POLL_MS', '1', /at least 100/],
    ['PODSCOPE_COMFYUI_TIMEOUT_MS', 'x', /integer/],
    ['PODSCOPE_WS_PING_MS', '999999999', /at most/],
    ['PODSCOPE_WS_MAX_FRAME_BYTES', '10', /at least/],
    ['PODSCOPE_LOG_LINES', '1', /at least 100/],
    ['PODSCOPE_LOG_BYTES', '1', /at least/],
    ['PODSCOPE_WORKSPACE_DIR', '', /empty/],
    ['PODSCOPE_FOLLOW_HEARTBEAT_MS', '5', /at least 100/],
    ['LOG_LEVEL', 'verbose', /one of/],
    ['RUNPOD_GPU_COUNT', 'two', /integer/],
  ];
  it.each(bad)('rejects %s=%j with one line naming it', (variable, value, problem) => {
    const err = problemFor({ [variable]: value });
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(new RegExp(`^${variable}: `));
    expect(err.message).toMatch(problem);
    expect(err.message).not.toContain('\n');
  });

  it('covers every variable with a bad-value case', () => {
    const tested = new Set(bad.map(([v]) => v));
    const untestable = ['COMFYUI_LOG_FILE', 'COMFYUI_OUTPUT_DIR', 'COMFYUI_TEMP_DIR', 'RUNPOD_POD_ID'];
    expect(CONFIG_VARIABLES.filter((v) => !tested.has(v) && !untestable.includes(v))).toEqual([]);
  });

  it('never quotes the value of a secret variable', () => {
    const err = problemFor({ PODSCOPE_TOKEN: 'has a space inside' });
    expect(err.message).not.toContain('space inside');
  });

  it('quotes the value of an ordinary variable', () => {
    expect(problemFor({ PODSCOPE_PORT: 'abc' }).message).toContain('"abc"');
  });
});
