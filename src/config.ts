/**
 * Configuration: every knob podscope has, parsed once from the environment into one frozen,
 * typed object. This is the only module that reads environment variables; everything else gets
 * the Config it is handed.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { isSecretName } from './secrets.js';

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
  COMFYUI_LOG_FILE: optionalText(),
  COMFYUI_OUTPUT_DIR: optionalText(),
  COMFYUI_TEMP_DIR: optionalText(),
  PODSCOPE_NVIDIA_SMI: text('nvidia-smi'),
  PODSCOPE_GPU: z
    .enum(['on', 'off'], { message: 'must be "on" or "off"' })
    .optional()
    .transform((v) => v ?? 'on'),
  PODSCOPE_GPU_INTERVAL_MS: int(100, 600_000, 1000),
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
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })
    .optional()
    .transform((v) => v ?? 'info'),
  RUNPOD_POD_ID: optionalText(),
  RUNPOD_GPU_COUNT: optionalInt(0, 64),
} as const;

const schema = z.object(ENV_SCHEMA);
type Parsed = z.infer<typeof schema>;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
  readonly env: 'production' | 'development';
  readonly comfyuiUrl: string;
  readonly comfyuiLogFile: string | undefined;
  readonly comfyuiOutputDir: string | undefined;
  /** ComfyUI's temp directory (where PreviewImage writes), when given; else learned from ComfyUI's argv. */
  readonly comfyuiTempDir: string | undefined;
  readonly nvidiaSmi: string;
  readonly gpuEnabled: boolean;
  readonly gpuIntervalMs: number;
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
  readonly podId: string;
  /** From RUNPOD_GPU_COUNT; undefined means "count the GPUs seen". */
  readonly gpuCount: number | undefined;
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

function toConfig(p: Parsed, fallbackHost: string): Config {
  return Object.freeze({
    port: p.PODSCOPE_PORT,
    host: p.PODSCOPE_HOST,
    token: p.PODSCOPE_TOKEN,
    env: p.PODSCOPE_ENV,
    comfyuiUrl: p.COMFYUI_URL,
    comfyuiLogFile: p.COMFYUI_LOG_FILE,
    comfyuiOutputDir: p.COMFYUI_OUTPUT_DIR,
    comfyuiTempDir: p.COMFYUI_TEMP_DIR,
    nvidiaSmi: p.PODSCOPE_NVIDIA_SMI,
    gpuEnabled: p.PODSCOPE_GPU === 'on' && p.RUNPOD_GPU_COUNT !== 0,
    gpuIntervalMs: p.PODSCOPE_GPU_INTERVAL_MS,
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
    podId: p.RUNPOD_POD_ID ?? fallbackHost,
    gpuCount: p.RUNPOD_GPU_COUNT,
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
  return toConfig(result.data, fallbackHost);
}

/** Names of every variable podscope reads; the README's table is checked against this list. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(ENV_SCHEMA);
