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
      logProbes: false,
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
    ['COMFYUI_URLS', 'gpu0=ftp://x', /entry "gpu0=ftp:\/\/x": must be an absolute http/],
    ['COMFYUI_LOG_FILES', '/var/log/comfy.log', /entry "\/var\/log\/comfy.log": must be NAME=PATH/],
    ['COMFYUI_OUTPUT_DIRS', 'gpu7=/out', /no instance is named "gpu7" \(there are: 8188\)/],
    ['COMFYUI_TEMP_DIRS', 'bad name=/tmp', /the name must be 1 to 32 letters/],
    ['PODSCOPE_COMFYUI_DISCOVER', 'all', /a loopback port or a range of them, like 8188-8195/],
    ['PODSCOPE_COMFYUI_DISCOVER_S', '0', /at least 1/],
    ['PODSCOPE_NVIDIA_SMI', '   ', /empty/],
    ['PODSCOPE_GPU', 'maybe', /on.*off/],
    ['PODSCOPE_GPU_INTERVAL_MS', '10', /at least 100/],
    ['PODSCOPE_GPU_BACKEND', 'cuda', /auto, nvml or nvidia-smi/],
    ['PODSCOPE_NVML_LIBRARY', ' ', /empty/],
    ['PODSCOPE_GPU_FAST_MS', '5', /at least 20/],
    ['PODSCOPE_GPU_CROSSCHECK_S', '1', /at least 10/],
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
    ['PODSCOPE_LOG_PROBES', 'yes', /"true" or "false"/],
    ['LOG_LEVEL', 'verbose', /one of/],
    ['RUNPOD_GPU_COUNT', 'two', /integer/],
    ['OTEL_SDK_DISABLED', 'maybe', /"true" or "false"/],
    ['OTEL_TRACES_EXPORTER', 'zipkin', /only over OTLP/],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'localhost:4318', /absolute http/],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'ftp://collector/v1/traces', /absolute http/],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc', /gRPC is not supported.*4318/],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'thrift', /http\/protobuf or http\/json/],
    ['OTEL_EXPORTER_OTLP_HEADERS', 'no-equals-sign', /header=value pairs/],
    ['OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'x-key=%zz', /percent-encoded/],
    ['OTEL_EXPORTER_OTLP_TIMEOUT', '0', /at least 1/],
    ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'soon', /integer/],
    ['OTEL_EXPORTER_OTLP_COMPRESSION', 'zstd', /"gzip" or "none"/],
    ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'br', /"gzip" or "none"/],
    ['OTEL_RESOURCE_ATTRIBUTES', '=orphan', /key=value pairs/],
    ['OTEL_TRACES_SAMPLER', 'sometimes', /one of always_on/],
    ['OTEL_TRACES_SAMPLER_ARG', '1.5', /from 0 to 1/],
    ['OTEL_BSP_MAX_QUEUE_SIZE', '0', /at least 1/],
    ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'many', /integer/],
    ['OTEL_BSP_SCHEDULE_DELAY', '-1', /at least 0/],
    ['OTEL_BSP_EXPORT_TIMEOUT', '0', /at least 1/],
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
    const untestable = ['COMFYUI_LOG_FILE', 'COMFYUI_OUTPUT_DIR', 'COMFYUI_TEMP_DIR', 'RUNPOD_POD_ID', 'OTEL_SERVICE_NAME'];
    expect(CONFIG_VARIABLES.filter((v) => !tested.has(v) && !untestable.includes(v))).toEqual([]);
  });

  it('never quotes the value of a secret variable', () => {
    const err = problemFor({ PODSCOPE_TOKEN: 'has a space inside' });
    expect(err.message).not.toContain('space inside');
  });

  it('never quotes OTLP headers, which carry a collector\'s API key', () => {
    const err = problemFor({ OTEL_EXPORTER_OTLP_HEADERS: 'x-honeycomb-team=hc-secret-value,broken' });
    expect(err.message).not.toContain('hc-secret-value');
  });

  it('quotes the value of an ordinary variable', () => {
    expect(problemFor({ PODSCOPE_PORT: 'abc' }).message).toContain('"abc"');
  });
});

describe('the ComfyUI instances followed', () => {
  it('is one, named by its port, from COMFYUI_URL as before', () => {
    const c = loadConfig({ COMFYUI_URL: 'http://127.0.0.1:8190/', COMFYUI_LOG_FILE: '/logs/comfy.log' }, 'h');
    expect(c.instances).toEqual([{ name: '8190', url: 'http://127.0.0.1:8190', logFile: '/logs/comfy.log', outputDir: undefined, tempDir: undefined }]);
    expect(c.comfyuiUrl).toBe('http://127.0.0.1:8190');
    expect(c.comfyuiLogFile).toBe('/logs/comfy.log');
  });

  it('takes COMFYUI_URLS as NAME=URL or a bare URL named by its port, in the order given', () => {
    const c = loadConfig({ COMFYUI_URLS: 'http://127.0.0.1:8188, gpu1=http://127.0.0.1:8189/ ,https://abc-8190.proxy.runpod.net' }, 'h');
    expect(c.instances.map((i) => [i.name, i.url])).toEqual([
      ['8188', 'http://127.0.0.1:8188'],
      ['gpu1', 'http://127.0.0.1:8189'],
      ['abc-8190', 'https://abc-8190.proxy.runpod.net'],
    ]);
    expect(c.comfyuiUrl).toBe('http://127.0.0.1:8188');
  });

  it('names a URL without a port by its host, or by the scheme\'s port for an IP address', () => {
    const c = loadConfig({ COMFYUI_URLS: 'https://abc-8188.proxy.runpod.net,http://10.0.0.5,https://[::1]' }, 'h');
    expect(c.instances.map((i) => i.name)).toEqual(['abc-8188', '80', '443']);
  });

  it('gives each instance its own log file and directories from the NAME=PATH lists', () => {
    const c = loadConfig(
      { COMFYUI_URLS: 'a=http://127.0.0.1:8188,b=http://127.0.0.1:8189', COMFYUI_LOG_FILES: 'b=/logs/b.log,a=/logs/a.log', COMFYUI_OUTPUT_DIRS: 'b=/out/b', COMFYUI_TEMP_DIRS: 'a=/tmp/a' },
      'h',
    );
    expect(c.instances).toEqual([
      { name: 'a', url: 'http://127.0.0.1:8188', logFile: '/logs/a.log', outputDir: undefined, tempDir: '/tmp/a' },
      { name: 'b', url: 'http://127.0.0.1:8189', logFile: '/logs/b.log', outputDir: '/out/b', tempDir: undefined },
    ]);
  });

  const badLists: Array<[Record<string, string>, string, RegExp]> = [
    [{ COMFYUI_URLS: 'http://a:8188,http://b:8188' }, 'COMFYUI_URLS', /entry "http:\/\/b:8188": the name "8188" is taken by an earlier entry; name the entries/],
    [{ COMFYUI_URLS: 'x=http://a:8188,y=http://a:8188' }, 'COMFYUI_URLS', /the same URL is listed twice/],
    [{ COMFYUI_URLS: ' , ' }, 'COMFYUI_URLS', /lists no URL/],
    [{ COMFYUI_URLS: 'http://a:8188', COMFYUI_URL: 'http://a:8189' }, 'COMFYUI_URLS', /either COMFYUI_URL .* or COMFYUI_URLS/],
    [{ COMFYUI_URLS: 'http://a:8188,http://a:8189', COMFYUI_LOG_FILE: '/l' }, 'COMFYUI_LOG_FILE', /one path for 2 instances; give COMFYUI_LOG_FILES/],
    [{ COMFYUI_LOG_FILE: '/l', COMFYUI_LOG_FILES: '8188=/l' }, 'COMFYUI_LOG_FILES', /either COMFYUI_LOG_FILE/],
    [{ COMFYUI_URLS: 'a=http://a:8188', COMFYUI_LOG_FILES: 'a=/l,a=/m' }, 'COMFYUI_LOG_FILES', /"a" is given twice/],
    [{ COMFYUI_URLS: Array.from({ length: 65 }, (_, i) => `http://a:${9000 + i}`).join(',') }, 'COMFYUI_URLS', /at most 64/],
  ];
  it.each(badLists)('stops on %j naming %s and the entry', (env, variable, problem) => {
    const err = problemFor(env);
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(problem);
  });

  it('with discovery alone, follows the range’s first port from the start and keeps the files given for the others', () => {
    const c = loadConfig({ PODSCOPE_COMFYUI_DISCOVER: '8188-8191', COMFYUI_LOG_FILES: '8188=/l/0.log,8190=/l/2.log' }, 'h');
    expect(c.instances).toEqual([{ name: '8188', url: 'http://127.0.0.1:8188', logFile: '/l/0.log', outputDir: undefined, tempDir: undefined }]);
    expect(c.discover).toEqual({ from: 8188, to: 8191, intervalMs: 30_000, files: { '8190': { logFile: '/l/2.log', outputDir: undefined, tempDir: undefined } } });
  });

  it('keeps the configured instances beside discovery, and is off without PODSCOPE_COMFYUI_DISCOVER', () => {
    expect(loadConfig({ COMFYUI_URL: 'http://127.0.0.1:9000', PODSCOPE_COMFYUI_DISCOVER: '8188' }, 'h').instances.map((i) => i.name)).toEqual(['9000']);
    expect(loadConfig({}, 'h').discover).toBeNull();
  });

  it.each([
    ['8195-8188', /from the lower port to the higher/],
    ['1000-1100', /at most 64 ports/],
    ['0', /from 1 to 65535/],
  ])('stops on PODSCOPE_COMFYUI_DISCOVER=%s', (value, problem) => {
    const err = problemFor({ PODSCOPE_COMFYUI_DISCOVER: value });
    expect(err.variable).toBe('PODSCOPE_COMFYUI_DISCOVER');
    expect(err.message).toMatch(problem);
  });

  it('masks the password of a URL it quotes', () => {
    const err = problemFor({ COMFYUI_URLS: 'a=http://u:hunter2secret@a:8188,b=http://u:hunter2secret@a:8188' });
    expect(err.message).not.toContain('hunter2secret');
  });
});

describe('trace export configuration', () => {
  const traces = (env: Record<string, string>) => loadConfig(env, 'h').traces;

  it('is off, with nothing of it loaded, when no OTLP endpoint is set', () => {
    expect(traces({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeNull();
  });

  it('appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })?.url).toBe('http://collector:4318/v1/traces');
  });

  it('takes OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, before the generic one', () => {
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/otlp/traces' })?.url).toBe('https://b/otlp/traces');
  });

  it('is off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, endpoint or not', () => {
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBeNull();
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
  });

  it('has the standard defaults: protobuf, 10 s timeout, parent-based sampling, a 2048-span queue sent every 5 s', () => {
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318' })).toMatchObject({
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 10_000,
      compression: 'none',
      serviceName: 'comfyui',
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduleDelayMs: 5000,
      exportTimeoutMs: 30_000,
    });
  });

  it('lets the traces-specific variable win over the generic one', () => {
    const t = traces({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=2',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=3',
    });
    expect(t).toMatchObject({ protocol: 'http/json', timeoutMs: 2500, headers: { a: '1', b: '3' } });
  });

  it('decodes percent-encoded header and resource values', () => {
    const t = traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=gen%2Cai' });
    expect(t?.headers).toEqual({ authorization: 'Bearer abc' });
    expect(t?.resourceAttributes).toEqual({ 'deployment.environment': 'prod', team: 'gen,ai' });
  });

  it('names the service from OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES', () => {
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_RESOURCE_ATTRIBUTES: 'service.name=render' })?.serviceName).toBe('render');
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_RESOURCE_ATTRIBUTES: 'service.name=render', OTEL_SERVICE_NAME: 'comfy-prod' })?.serviceName).toBe('comfy-prod');
  });

  it('keeps a batch no larger than the queue', () => {
    expect(traces({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512' })?.maxExportBatchSize).toBe(10);
  });
});
