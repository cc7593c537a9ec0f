/**
 * Configuration: every knob podscope has, parsed once from the environment into one frozen,
 * typed object. This is the only module that reads environment variables; everything else gets
 * the Config it is handed.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { isSecretName, redactUrlCredentials } from './secrets.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function int(min: number, max: number, def: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, { message: `expected an integer from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `must be at least ${min}` }).max(max, { message: `must be at most ${max}` }))
    .optional()
    .transform((v) => v ?? def);
}

function optionalInt(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+$/, { message: `expected an integer from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `must be at least ${min}` }).max(max, { message: `must be at most ${max}` }))
    .optional();
}

function text(def: string, pattern?: RegExp, what?: string) {
  let s = z.string().trim().min(1, { message: 'must not be empty' });
  if (pattern) s = s.regex(pattern, { message: what ?? `must match ${pattern}` });
  return s.optional().transform((v) => v ?? def);
}

function optionalText() {
  return z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : undefined));
}

const httpUrl = z
  .string()
  .trim()
  .optional()
  .transform((v) => v || 'http://127.0.0.1:8188')
  .superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL' });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL' });
    }
  })
  .transform((v) => v.replace(/\/+$/, ''));

const MiB = 1024 * 1024;

/** An optional http(s) URL; credentials in it are never quoted back. */
const optionalHttpUrl = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined))
  .refine((v) => v === undefined || /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v), { message: 'must be an absolute http:// or https:// URL' });

function choice<const T extends readonly [string, ...string[]]>(values: T, what: string) {
  return z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v.toLowerCase() : undefined))
    .refine((v): v is T[number] | undefined => v === undefined || values.includes(v), { message: what });
}

/** `key=value,key=value` as OpenTelemetry writes headers and resource attributes (values percent-encoded). */
function keyValueList(what: string) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      const out: Record<string, string> = {};
      for (const item of (v ?? '').split(',')) {
        if (item.trim() === '') continue;
        const eq = item.indexOf('=');
        const key = eq > 0 ? item.slice(0, eq).trim() : '';
        let value: string | null = null;
        try {
          value = eq > 0 ? decodeURIComponent(item.slice(eq + 1).trim()) : null;
        } catch {
          value = null;
        }
        if (!key || value === null) {
          ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${what}=value pairs, values percent-encoded` });
          return z.NEVER;
        }
        out[key] = value;
      }
      return out;
    });
}

const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
const otlpProtocol = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v.toLowerCase() : undefined))
  .refine((v) => v !== 'grpc', { message: 'OTLP over gRPC is not supported; point podscope at the collector\'s OTLP/HTTP port (usually 4318) with http/protobuf or http/json' })
  .refine((v): v is (typeof OTLP_PROTOCOLS)[number] | undefined => v === undefined || (OTLP_PROTOCOLS as readonly string[]).includes(v), { message: 'must be http/protobuf or http/json' });

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** The schema, keyed by environment variable name. Each entry documents one variable. */
export const ENV_SCHEMA = {
  PODSCOPE_PORT: int(0, 65535, 9188),
  PODSCOPE_HOST: text('0.0.0.0', /^[A-Za-z0-9.:[\]-]+$/, 'must be an IP address or host name'),
  PODSCOPE_TOKEN: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v))
    .refine((v) => v === undefined || /^[\x21-\x7e]{8,4096}$/.test(v), {
      message: 'must be 8 to 4096 printable ASCII characters without spaces',
    }),
  PODSCOPE_ENV: z
    .enum(['production', 'development'], { message: 'must be "production" or "development"' })
    .optional()
    .transform((v) => v ?? 'production'),
  COMFYUI_URL: httpUrl,
  COMFYUI_URLS: optionalText(),
  COMFYUI_LOG_FILE: optionalText(),
  COMFYUI_LOG_FILES: optionalText(),
  COMFYUI_OUTPUT_DIR: optionalText(),
  COMFYUI_OUTPUT_DIRS: optionalText(),
  COMFYUI_TEMP_DIR: optionalText(),
  COMFYUI_TEMP_DIRS: optionalText(),
  PODSCOPE_COMFYUI_DISCOVER: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : undefined))
    .refine((v) => v === undefined || /^\d{1,5}(-\d{1,5})?$/.test(v), { message: 'must be a loopback port or a range of them, like 8188-8195' }),
  PODSCOPE_COMFYUI_DISCOVER_S: int(1, 3600, 30),
  PODSCOPE_NVIDIA_SMI: text('nvidia-smi'),
  PODSCOPE_GPU: z
    .enum(['on', 'off'], { message: 'must be "on" or "off"' })
    .optional()
    .transform((v) => v ?? 'on'),
  PODSCOPE_GPU_INTERVAL_MS: int(100, 600_000, 1000),
  PODSCOPE_GPU_BACKEND: choice(['auto', 'nvml', 'nvidia-smi'], 'must be auto, nvml or nvidia-smi'),
  PODSCOPE_NVML_LIBRARY: text('libnvidia-ml.so.1'),
  PODSCOPE_GPU_FAST_MS: int(20, 10_000, 100),
  PODSCOPE_GPU_CROSSCHECK_S: int(10, 86_400, 3600),
  PODSCOPE_GPU_TIMEOUT_MS: int(100, 120_000, 5000),
  PODSCOPE_GPU_APPS_INTERVAL_MS: int(1000, 3_600_000, 10_000),
  PODSCOPE_GPU_HEALTH_INTERVAL_MS: int(1000, 3_600_000, 60_000),
  PODSCOPE_GPU_SAMPLES: int(10, 100_000, 3600),
  PODSCOPE_JOB_ID_KEY: text('job_id', /^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, "_", "." or "-"'),
  PODSCOPE_JOB_HISTORY: int(1, 10_000, 200),
  PODSCOPE_ARTIFACTS: int(1, 100_000, 2000),
  PODSCOPE_EVENTS: int(100, 1_000_000, 5000),
  PODSCOPE_STALL_S: int(5, 86_400, 300),
  PODSCOPE_COMFYUI_GONE_S: int(1, 3600, 15),
  PODSCOPE_PROBLEM_REMIND_S: int(10, 86_400, 300),
  PODSCOPE_COMFYUI_POLL_MS: int(100, 60_000, 2000),
  PODSCOPE_COMFYUI_TIMEOUT_MS: int(100, 60_000, 3000),
  PODSCOPE_WS_PING_MS: int(100, 120_000, 10_000),
  PODSCOPE_WS_MAX_FRAME_BYTES: int(64 * 1024, 256 * MiB, 16 * MiB),
  PODSCOPE_LOG_LINES: int(100, 1_000_000, 20_000),
  PODSCOPE_LOG_BYTES: int(64 * 1024, 512 * MiB, 16 * MiB),
  PODSCOPE_WORKSPACE_DIR: text('/workspace'),
  PODSCOPE_FOLLOW_HEARTBEAT_MS: int(100, 60_000, 15_000),
  PODSCOPE_LOG_PROBES: choice(['true', 'false'], 'must be "true" or "false"'),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })
    .optional()
    .transform((v) => v ?? 'info'),
  RUNPOD_POD_ID: optionalText(),
  RUNPOD_GPU_COUNT: optionalInt(0, 64),
  OTEL_SDK_DISABLED: choice(['true', 'false'], 'must be "true" or "false"'),
  OTEL_TRACES_EXPORTER: choice(['otlp', 'none'], 'must be "otlp" or "none" (podscope exports traces only over OTLP)'),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalHttpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalHttpUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
  OTEL_EXPORTER_OTLP_HEADERS: keyValueList('header'),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: keyValueList('header'),
  OTEL_EXPORTER_OTLP_TIMEOUT: optionalInt(1, 600_000),
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: optionalInt(1, 600_000),
  OTEL_EXPORTER_OTLP_COMPRESSION: choice(['gzip', 'none'], 'must be "gzip" or "none"'),
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: choice(['gzip', 'none'], 'must be "gzip" or "none"'),
  OTEL_SERVICE_NAME: optionalText(),
  OTEL_RESOURCE_ATTRIBUTES: keyValueList('key'),
  OTEL_TRACES_SAMPLER: choice(SAMPLERS, `must be one of ${SAMPLERS.join(', ')}`),
  OTEL_TRACES_SAMPLER_ARG: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? Number(v) : undefined))
    .refine((v) => v === undefined || (Number.isFinite(v) && v >= 0 && v <= 1), { message: 'must be a number from 0 to 1' }),
  OTEL_BSP_MAX_QUEUE_SIZE: int(1, 1_000_000, 2048),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: int(1, 1_000_000, 512),
  OTEL_BSP_SCHEDULE_DELAY: int(0, 3_600_000, 5000),
  OTEL_BSP_EXPORT_TIMEOUT: int(1, 600_000, 30_000),
} as const;

const schema = z.object(ENV_SCHEMA);
type Parsed = z.infer<typeof schema>;

/** One ComfyUI podscope follows: its name (in answers, filters and the `comfyui` metric label) and where it is. */
export interface InstanceConfig {
  readonly name: string;
  readonly url: string;
  readonly logFile: string | undefined;
  /** Its output and temp directories when given; else read from its command line. */
  readonly outputDir: string | undefined;
  readonly tempDir: string | undefined;
}

/** Loopback ports probed for ComfyUIs that appear while podscope runs (PODSCOPE_COMFYUI_DISCOVER). */
export interface DiscoverConfig {
  readonly from: number;
  readonly to: number;
  readonly intervalMs: number;
  /** Log files and directories given (COMFYUI_LOG_FILES…) for instances not followed yet, by name (a port). */
  readonly files: Readonly<Record<string, Omit<InstanceConfig, 'name' | 'url'>>>;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
  readonly env: 'production' | 'development';
  /**
   * Every ComfyUI followed, in the order given (COMFYUI_URLS, else the one COMFYUI_URL); never
   * empty. The first answers the single-instance fields of /debug/status.
   */
  readonly instances: readonly InstanceConfig[];
  /** Discovery of more ComfyUIs on loopback ports; null when off. */
  readonly discover: DiscoverConfig | null;
  /** The first instance's URL, log file and directories (the single-instance contract). */
  readonly comfyuiUrl: string;
  readonly comfyuiLogFile: string | undefined;
  readonly comfyuiOutputDir: string | undefined;
  /** ComfyUI's temp directory (where PreviewImage writes), when given; else learned from ComfyUI's argv. */
  readonly comfyuiTempDir: string | undefined;
  readonly nvidiaSmi: string;
  readonly gpuEnabled: boolean;
  readonly gpuIntervalMs: number;
  /** How the GPUs are read: NVML where it loads (auto), only NVML, or only nvidia-smi. */
  readonly gpuBackend: 'auto' | 'nvml' | 'nvidia-smi';
  readonly nvmlLibrary: string;
  /** NVML's memory period, for each sample's maximum. */
  readonly gpuFastMs: number;
  /** Seconds between two comparisons of NVML's reading with one nvidia-smi run. */
  readonly gpuCrosscheckS: number;
  readonly gpuTimeoutMs: number;
  readonly gpuAppsIntervalMs: number;
  /** Period of the memory-health, `-L` and (under MIG) `-q` runs. */
  readonly gpuHealthIntervalMs: number;
  readonly gpuSamples: number;
  readonly jobIdKey: string;
  readonly jobHistory: number;
  readonly artifacts: number;
  /** Events the /debug/events replay buffer keeps (and at most 8 MiB of them). */
  readonly events: number;
  readonly stallS: number;
  /** Seconds a ComfyUI that refuses connections (and whose websocket is closed) may stay away before its jobs are lost. */
  readonly comfyuiGoneS: number;
  /** Seconds between the log records that say a problem still lasts. */
  readonly problemRemindS: number;
  readonly comfyuiPollMs: number;
  readonly comfyuiTimeoutMs: number;
  readonly wsPingMs: number;
  readonly wsMaxFrameBytes: number;
  readonly logLines: number;
  readonly logBytes: number;
  readonly workspaceDir: string;
  readonly followHeartbeatMs: number;
  readonly logLevel: LogLevel;
  /** Whether a 200 answer to /health or /ready gets an access line (PODSCOPE_LOG_PROBES). */
  readonly logProbes: boolean;
  readonly podId: string;
  /** From RUNPOD_GPU_COUNT; undefined means "count the GPUs seen". */
  readonly gpuCount: number | undefined;
  /** Where and how job traces go over OTLP/HTTP; null when no endpoint is set (nothing is loaded). */
  readonly traces: TraceConfig | null;
}

/** The OTLP trace export, from the standard OTEL_* variables. */
export interface TraceConfig {
  /** The full traces URL (`…/v1/traces` appended to OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly url: string;
  readonly protocol: 'http/protobuf' | 'http/json';
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly compression: 'gzip' | 'none';
  /** OTEL_SERVICE_NAME, else service.name from OTEL_RESOURCE_ATTRIBUTES, else "comfyui". */
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  readonly samplerRatio: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduleDelayMs: number;
  readonly exportTimeoutMs: number;
}

function traceConfig(p: Parsed): TraceConfig | null {
  const generic = p.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url = p.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (generic ? `${generic.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!url || p.OTEL_SDK_DISABLED === 'true' || p.OTEL_TRACES_EXPORTER === 'none') return null;
  const resourceAttributes = p.OTEL_RESOURCE_ATTRIBUTES;
  return Object.freeze({
    url,
    protocol: p.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? p.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
    headers: Object.freeze({ ...p.OTEL_EXPORTER_OTLP_HEADERS, ...p.OTEL_EXPORTER_OTLP_TRACES_HEADERS }),
    timeoutMs: p.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? p.OTEL_EXPORTER_OTLP_TIMEOUT ?? 10_000,
    compression: p.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION ?? p.OTEL_EXPORTER_OTLP_COMPRESSION ?? 'none',
    serviceName: p.OTEL_SERVICE_NAME ?? resourceAttributes['service.name'] ?? 'comfyui',
    resourceAttributes: Object.freeze(resourceAttributes),
    sampler: p.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on',
    samplerRatio: p.OTEL_TRACES_SAMPLER_ARG ?? 1,
    maxQueueSize: p.OTEL_BSP_MAX_QUEUE_SIZE,
    maxExportBatchSize: Math.min(p.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, p.OTEL_BSP_MAX_QUEUE_SIZE),
    scheduleDelayMs: p.OTEL_BSP_SCHEDULE_DELAY,
    exportTimeoutMs: p.OTEL_BSP_EXPORT_TIMEOUT,
  });
}

/** A configuration error: one variable, one problem, ready to print as a single line. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** A name for an instance: what the `comfyui` label and `?instance=` take. */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/**
 * The name of an instance given by its URL alone: its port; without one, the first label of its
 * host name (`abc-8188` of RunPod's proxy), or for an IP address the scheme's port.
 */
export function instanceName(url: string): string {
  const u = new URL(url);
  const ip = /^[\d.]+$|^\[/.test(u.hostname);
  const name = u.port || (ip ? (u.protocol === 'https:' ? '443' : '80') : u.hostname.split('.')[0]!.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 32));
  return INSTANCE_NAME.test(name) ? name : 'comfyui';
}

/** An entry as an error may quote it: URL credentials masked, at most 80 characters. */
const quoted = (entry: string) => JSON.stringify(redactUrlCredentials(entry).slice(0, 80));

/** `NAME=VALUE` or, where `bare` allows, a value alone; the name must be a valid instance name. */
function listEntries(variable: string, raw: string): Array<{ name: string | null; value: string; entry: string }> {
  const out: Array<{ name: string | null; value: string; entry: string }> = [];
  for (const item of raw.split(',')) {
    const entry = item.trim();
    if (entry === '') continue;
    const m = /^([^=:/]+)=(.*)$/.exec(entry);
    if (m && !INSTANCE_NAME.test(m[1]!.trim())) {
      throw new ConfigError(variable, `entry ${quoted(entry)}: the name must be 1 to 32 letters, digits, "_", "." or "-", starting with a letter or digit`);
    }
    out.push(m ? { name: m[1]!.trim(), value: m[2]!.trim(), entry } : { name: null, value: entry, entry });
  }
  return out;
}

function checkUrl(variable: string, entry: string, url: string): string {
  if (!/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) throw new ConfigError(variable, `entry ${quoted(entry)}: must be an absolute http:// or https:// URL`);
  return url.replace(/\/+$/, '');
}

/**
 * The instances, from COMFYUI_URLS (or COMFYUI_URL), each with its log file and directories from
 * the `NAME=PATH` lists (or the single variables, which fit only one instance). Throws a
 * ConfigError naming the variable and the entry.
 */
function instancesOf(p: Parsed, env: Record<string, string | undefined>): { instances: InstanceConfig[]; discover: DiscoverConfig | null } {
  const urls: Array<{ name: string; url: string }> = [];
  const range = discoverRange(p.PODSCOPE_COMFYUI_DISCOVER);
  if (p.COMFYUI_URLS !== undefined) {
    if (env.COMFYUI_URL?.trim()) throw new ConfigError('COMFYUI_URLS', 'set either COMFYUI_URL (one ComfyUI) or COMFYUI_URLS (several), not both');
    for (const { name, value, entry } of listEntries('COMFYUI_URLS', p.COMFYUI_URLS)) {
      const url = checkUrl('COMFYUI_URLS', entry, value);
      const named = name ?? instanceName(url);
      if (urls.some((u) => u.name === named)) throw new ConfigError('COMFYUI_URLS', `entry ${quoted(entry)}: the name "${named}" is taken by an earlier entry${name ? '' : '; name the entries (NAME=URL)'}`);
      if (urls.some((u) => u.url === url)) throw new ConfigError('COMFYUI_URLS', `entry ${quoted(entry)}: the same URL is listed twice`);
      urls.push({ name: named, url });
    }
    if (urls.length === 0) throw new ConfigError('COMFYUI_URLS', 'lists no URL');
    if (urls.length > MAX_INSTANCES) throw new ConfigError('COMFYUI_URLS', `lists ${urls.length} instances; podscope follows at most ${MAX_INSTANCES}`);
  } else if (range && !env.COMFYUI_URL?.trim()) {
    // Discovery alone: the range's first port is followed from the start, as COMFYUI_URL would be.
    urls.push({ name: String(range.from), url: `http://127.0.0.1:${range.from}` });
  } else {
    urls.push({ name: instanceName(p.COMFYUI_URL), url: p.COMFYUI_URL });
  }
  // A name in the NAME=PATH lists: a configured instance, or a port discovery may find.
  const known = (name: string) => urls.some((u) => u.name === name) || (range !== null && /^\d+$/.test(name) && Number(name) >= range.from && Number(name) <= range.to);
  const perInstance = (single: 'COMFYUI_LOG_FILE' | 'COMFYUI_OUTPUT_DIR' | 'COMFYUI_TEMP_DIR', list: 'COMFYUI_LOG_FILES' | 'COMFYUI_OUTPUT_DIRS' | 'COMFYUI_TEMP_DIRS') => {
    const byName = new Map<string, string>();
    const one = p[single];
    const many = p[list];
    if (one !== undefined && many !== undefined) throw new ConfigError(list, `set either ${single} (one ComfyUI) or ${list} (NAME=PATH for each), not both`);
    if (one !== undefined) {
      if (urls.length > 1) throw new ConfigError(single, `names one path for ${urls.length} instances; give ${list}=NAME=PATH,… instead`);
      byName.set(urls[0]!.name, one);
    }
    for (const { name, value, entry } of listEntries(list, many ?? '')) {
      if (name === null || value === '') throw new ConfigError(list, `entry ${quoted(entry)}: must be NAME=PATH`);
      if (!known(name)) throw new ConfigError(list, `entry ${quoted(entry)}: no instance is named "${name}" (there are: ${urls.map((u) => u.name).join(', ')}${range ? `, and the ports ${range.from}-${range.to} discovery probes` : ''})`);
      if (byName.has(name)) throw new ConfigError(list, `entry ${quoted(entry)}: "${name}" is given twice`);
      byName.set(name, value);
    }
    return byName;
  };
  const logFiles = perInstance('COMFYUI_LOG_FILE', 'COMFYUI_LOG_FILES');
  const outputDirs = perInstance('COMFYUI_OUTPUT_DIR', 'COMFYUI_OUTPUT_DIRS');
  const tempDirs = perInstance('COMFYUI_TEMP_DIR', 'COMFYUI_TEMP_DIRS');
  const filesOf = (name: string) => ({ logFile: logFiles.get(name), outputDir: outputDirs.get(name), tempDir: tempDirs.get(name) });
  const instances = urls.map(({ name, url }) => Object.freeze({ name, url, ...filesOf(name) }));
  if (!range) return { instances, discover: null };
  const files: Record<string, Omit<InstanceConfig, 'name' | 'url'>> = {};
  for (const name of new Set([...logFiles.keys(), ...outputDirs.keys(), ...tempDirs.keys()])) if (!urls.some((u) => u.name === name)) files[name] = Object.freeze(filesOf(name));
  return { instances, discover: Object.freeze({ ...range, intervalMs: p.PODSCOPE_COMFYUI_DISCOVER_S * 1000, files: Object.freeze(files) }) };
}

/** PODSCOPE_COMFYUI_DISCOVER as a range of ports, at most MAX_INSTANCES of them. */
function discoverRange(raw: string | undefined): { from: number; to: number } | null {
  if (raw === undefined) return null;
  const [a, b = a] = raw.split('-').map(Number) as [number, number?];
  const bad = (problem: string) => new ConfigError('PODSCOPE_COMFYUI_DISCOVER', `${problem} (got ${JSON.stringify(raw)})`);
  if (a < 1 || b! > 65535) throw bad('ports are from 1 to 65535');
  if (b! < a) throw bad('the range must run from the lower port to the higher');
  if (b! - a + 1 > MAX_INSTANCES) throw bad(`a range of at most ${MAX_INSTANCES} ports`);
  return { from: a, to: b! };
}

/** The most instances one podscope follows (the `comfyui` label's cardinality stays bounded). */
export const MAX_INSTANCES = 64;

function toConfig(p: Parsed, fallbackHost: string, env: Record<string, string | undefined>): Config {
  const { instances: list, discover } = instancesOf(p, env);
  const instances = Object.freeze(list);
  const first = instances[0]!;
  return Object.freeze({
    port: p.PODSCOPE_PORT,
    host: p.PODSCOPE_HOST,
    token: p.PODSCOPE_TOKEN,
    env: p.PODSCOPE_ENV,
    instances,
    discover,
    comfyuiUrl: first.url,
    comfyuiLogFile: first.logFile,
    comfyuiOutputDir: first.outputDir,
    comfyuiTempDir: first.tempDir,
    nvidiaSmi: p.PODSCOPE_NVIDIA_SMI,
    gpuEnabled: p.PODSCOPE_GPU === 'on' && p.RUNPOD_GPU_COUNT !== 0,
    gpuIntervalMs: p.PODSCOPE_GPU_INTERVAL_MS,
    gpuBackend: p.PODSCOPE_GPU_BACKEND ?? 'auto',
    nvmlLibrary: p.PODSCOPE_NVML_LIBRARY,
    gpuFastMs: Math.min(p.PODSCOPE_GPU_FAST_MS, p.PODSCOPE_GPU_INTERVAL_MS),
    gpuCrosscheckS: p.PODSCOPE_GPU_CROSSCHECK_S,
    gpuTimeoutMs: p.PODSCOPE_GPU_TIMEOUT_MS,
    gpuAppsIntervalMs: p.PODSCOPE_GPU_APPS_INTERVAL_MS,
    gpuHealthIntervalMs: p.PODSCOPE_GPU_HEALTH_INTERVAL_MS,
    gpuSamples: p.PODSCOPE_GPU_SAMPLES,
    jobIdKey: p.PODSCOPE_JOB_ID_KEY,
    jobHistory: p.PODSCOPE_JOB_HISTORY,
    artifacts: p.PODSCOPE_ARTIFACTS,
    events: p.PODSCOPE_EVENTS,
    stallS: p.PODSCOPE_STALL_S,
    comfyuiGoneS: p.PODSCOPE_COMFYUI_GONE_S,
    problemRemindS: p.PODSCOPE_PROBLEM_REMIND_S,
    comfyuiPollMs: p.PODSCOPE_COMFYUI_POLL_MS,
    comfyuiTimeoutMs: p.PODSCOPE_COMFYUI_TIMEOUT_MS,
    wsPingMs: p.PODSCOPE_WS_PING_MS,
    wsMaxFrameBytes: p.PODSCOPE_WS_MAX_FRAME_BYTES,
    logLines: p.PODSCOPE_LOG_LINES,
    logBytes: p.PODSCOPE_LOG_BYTES,
    workspaceDir: p.PODSCOPE_WORKSPACE_DIR,
    followHeartbeatMs: p.PODSCOPE_FOLLOW_HEARTBEAT_MS,
    logLevel: p.LOG_LEVEL,
    logProbes: p.PODSCOPE_LOG_PROBES === 'true',
    podId: p.RUNPOD_POD_ID ?? fallbackHost,
    gpuCount: p.RUNPOD_GPU_COUNT,
    traces: traceConfig(p),
  });
}

/**
 * Parses the environment. Throws a {@link ConfigError} naming the first bad variable; the value
 * of a secret variable is never quoted in the message.
 */
export function loadConfig(env: Record<string, string | undefined>, fallbackHost: string = hostname()): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(ENV_SCHEMA)) input[key] = env[key];
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const raw = input[variable];
    const shown = raw === undefined || isSecretName(variable) ? '' : ` (got ${JSON.stringify(raw.slice(0, 80))})`;
    throw new ConfigError(variable, `${issue.message}${shown}`);
  }
  return toConfig(result.data, fallbackHost, input);
}

/** Names of every variable podscope reads; docs/configuration.md's table is checked against this list. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(ENV_SCHEMA);
