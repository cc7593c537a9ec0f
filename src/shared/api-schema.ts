/**
 * The shapes of podscope's JSON answers, once: the views are typed from these schemas
 * (`z.infer`), `/openapi.json` is generated from them (src/http/openapi.ts), and the tests check
 * every answer they receive against that document. Nothing here runs on the request path.
 *
 * Conventions the schemas spell out: times are ISO 8601 strings in UTC; a value podscope does not
 * know is null, usually with a `*_reason` saying why; fields that exist only in some answers (an
 * instance's name on a multi-instance pod, NVML-only readings) are optional rather than null.
 */
import { z } from 'zod';

/** Every shape with a name of its own: the document's components. */
export const API = z.registry<{ id: string; description?: string }>();

const iso = z.string().describe('ISO 8601 time, UTC');
const isoOrNull = iso.nullable();
const num = z.number().nullable();
const str = z.string().nullable();
const reasons = z.record(z.string(), z.string()).describe('why each field that is null is null');

export const JOB_STATUSES = ['queued', 'running', 'success', 'error', 'interrupted', 'lost'] as const;
const jobStatus = z.enum(JOB_STATUSES);
const timing = z.enum(['comfyui', 'observed']).nullable().describe("whose clock a time is on: ComfyUI's own, or when podscope observed it");
const podStatus = z.enum(['starting', 'idle', 'processing', 'degraded']);

export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.enum(['INVALID_PARAMETER', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'JOB_NOT_FOUND', 'NO_JOB', 'METHOD_NOT_ALLOWED', 'PAYLOAD_TOO_LARGE', 'INTERNAL', 'UNAVAILABLE', 'HEADERS_TOO_LARGE', 'BAD_REQUEST']),
      message: z.string(),
      request_id: z.string(),
      trace_id: z.string(),
      details: z.record(z.string(), z.unknown()),
      help: str,
    }),
  })
  .register(API, { id: 'Error', description: 'Every error answer: a stable code, a sentence, the request and trace ids, details, and what to do.' });

export const Problem = z
  .object({
    component: z.string(),
    instance: z.string().optional().describe('the ComfyUI instance it is about; absent for the pod’s own'),
    code: z.string(),
    message: z.string(),
    since: iso,
    severity: z.enum(['error', 'warning']),
  })
  .register(API, { id: 'Problem' });

export const Health = z.object({ status: z.literal('ok'), version: z.string(), uptime_s: z.number() }).register(API, { id: 'Health' });

export const Ready = z
  .object({
    status: z.enum(['ok', 'starting', 'degraded']),
    instance: z.string().optional(),
    checks: z.record(z.string(), z.string()).describe('comfyui, websocket, gpu: `ok` or what fails'),
    problems: z.array(z.object({ component: z.string(), code: z.string(), message: z.string() })),
    instances: z.array(z.object({ name: z.string(), status: z.enum(['ok', 'starting', 'degraded']) })).optional().describe('each instance’s condition, on a pod of several'),
    version: z.string(),
  })
  .register(API, { id: 'Ready', description: '200 when ready, 503 otherwise, with the same body.' });

const migDevice = z.object({
  index: num,
  gpu_instance_id: num,
  compute_instance_id: num,
  profile: str,
  uuid: str,
  memory_total_mb: num,
  memory_used_mb: num,
  processes: z.array(z.object({ gpu_instance_id: num, compute_instance_id: num, pid: num, process_name: z.string(), used_memory_mb: num })),
});

export const GpuHealth = z
  .object({
    ecc_mode: str,
    ecc: z.object({ volatile_corrected: num, volatile_uncorrected: num, aggregate_corrected: num, aggregate_uncorrected: num }),
    retired_pages: z.object({ single_bit_ecc: num, double_bit_ecc: num, pending: z.boolean().nullable() }),
    remapped_rows: z.object({ correctable: num, uncorrectable: num, pending: z.boolean().nullable(), failure: z.boolean().nullable() }),
    null_reasons: reasons,
    sampled_at: iso,
    verdict: str.describe('what on-call should do about it; null when nothing is wrong'),
  })
  .register(API, { id: 'GpuHealth' });

export const Gpu = z
  .object({
    index: num,
    uuid: str,
    pci_bus_id: str,
    name: z.string(),
    memory_used_mb: num,
    memory_total_mb: num,
    utilization_percent: num,
    temperature_c: num,
    power_w: num,
    power_limit_w: num,
    sm_clock_mhz: num,
    sm_clock_max_mhz: num,
    memory_temperature_c: num,
    fan_percent: num,
    pstate: str,
    persistence_mode: str,
    mig_mode: str,
    clock_event_reasons: z.array(z.string()),
    lost: z.boolean(),
    lost_reason: str,
    never_seen: z.boolean(),
    health: GpuHealth.nullable(),
    mig_devices: z.array(migDevice),
    sampled_at: iso,
    age_s: z.number(),
    null_reasons: reasons.optional(),
    pcie: z.object({ link_gen: num, link_width: num, tx_mb_s: num, rx_mb_s: num }).optional().describe('NVML only'),
    clock_violation_s: z.object({ power: num, thermal: num }).optional().describe('NVML only'),
  })
  .register(API, { id: 'Gpu' });

const gpuSampling = z.object({
  name: z.enum(['nvml', 'nvidia-smi']),
  reason: z.string(),
  driver: str,
  xid_events: z.union([z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), reason: z.string() })]),
  missing_functions: z.array(z.string()),
  crosscheck: z.object({ at: z.number().describe('epoch ms'), agreed: z.boolean().nullable(), reason: str, mismatches: z.array(z.string()) }).nullable().optional(),
});

const nodeProgress = z.object({ steps: z.number(), total: z.number() });

export const CurrentJob = z
  .object({
    job_id: str,
    prompt_id: z.string(),
    instance: z.string(),
    job_id_unknown_reason: z.string().optional(),
    progress_percent: num,
    progress_unknown_reason: z.string().optional(),
    started_at: isoOrNull,
    elapsed_s: num,
    current_node: z.object({ node_id: z.string(), class_type: z.string(), title: str, progress: nodeProgress.nullable() }).nullable(),
    gpu_seconds: num,
    last_activity_s: z.number(),
  })
  .register(API, { id: 'CurrentJob' });

const visibility = z.object({
  mode: z.enum(['tap', 'observer']),
  sees: z.string(),
  node_progress: z.object({ seen: z.boolean().nullable(), how: z.string() }).optional(),
});

const comfyInfo = z.object({
  connected: z.boolean(),
  url: z.string(),
  version: str,
  http_ok: z.boolean(),
  websocket: z.boolean(),
  tap: z.boolean(),
  tap_version: str,
  visibility,
  last_frame_at: isoOrNull,
});

const queueCounts = z.object({ running: z.number(), pending: z.number() });

export const Instance = z
  .object({
    name: z.string(),
    url: z.string(),
    status: podStatus,
    connected: z.boolean(),
    version: str,
    tap: z.boolean(),
    gpus: z.array(z.object({ index: num, uuid: str })).nullable().describe('the GPUs it runs on; null when unknown (the reason says why)'),
    gpus_unknown_reason: z.string().optional(),
    gpus_source: z.enum(['argv', 'cuda_visible_devices', 'system_stats']).optional(),
    queue: queueCounts,
    current_job: CurrentJob.nullable(),
    problems: z.array(Problem),
  })
  .register(API, { id: 'Instance' });

export const Status = z
  .object({
    pod_id: z.string(),
    status: podStatus,
    gpu: Gpu.nullable(),
    gpus: z.array(Gpu),
    gpu_sampling: gpuSampling.nullable(),
    current_job: CurrentJob.nullable(),
    current_jobs: z.array(CurrentJob),
    comfyui: comfyInfo,
    queue: queueCounts,
    instances: z.array(Instance),
    problems: z.array(Problem),
    sampled_at: iso,
  })
  .register(API, { id: 'Status' });

const jobIdentity = {
  job_id: str.describe("the platform's job id from extra_data; null until it was read"),
  prompt_id: z.string(),
  instance: z.string(),
  job_id_unknown_reason: z.string().optional(),
};

export const JobError = z
  .object({ node_id: str, class_type: str, exception_type: z.string(), exception_message: z.string(), traceback: z.array(z.string()).readonly() })
  .catchall(z.unknown())
  .register(API, { id: 'JobError', description: 'The error as ComfyUI reported it, with evidence podscope attached (OOM forensics, rejection reasons).' });

export const WorkflowNode = z
  .object({
    id: z.string(),
    node_id: z.string(),
    class_type: z.string(),
    title: str,
    status: z.enum(['pending', 'running', 'completed', 'cached', 'error', 'interrupted', 'skipped']),
    progress: nodeProgress.nullable(),
    started_at: isoOrNull,
    finished_at: isoOrNull,
    duration_ms: num,
    duration_unknown_reason: z.string().optional(),
    timing,
    peak_vram_mb: z.number().optional().describe('the tap, where CUDA is present'),
    needed: z.literal(false).optional().describe('present (false) for a node the outputs asked for do not need'),
  })
  .register(API, { id: 'WorkflowNode' });

export const Workflow = z
  .object({
    ...jobIdentity,
    trace_id: str,
    client_id: str,
    status: jobStatus,
    progress_percent: num,
    progress_unknown_reason: z.string().optional(),
    nodes_total: z.number(),
    nodes_completed: z.number(),
    nodes: z.array(WorkflowNode),
    error: JobError.nullable(),
    queued_at: isoOrNull,
    first_seen_at: iso,
    started_at: isoOrNull,
    started_timing: timing,
    finished_at: isoOrNull,
    finished_timing: timing,
    duration_s: num,
    gpu_seconds: num,
    busy_gpu_seconds: num,
    peak_vram_mb: num,
    lost_reason: str,
    retry_of: str,
    outputs: z.number(),
    sources: z.array(z.string()).readonly(),
    last_activity_at: iso,
    sampled_at: iso,
  })
  .register(API, { id: 'Workflow' });

const errorBrief = z.object({ node_id: str, class_type: str, exception_type: z.string(), message: z.string(), oom: z.literal(true).optional() });

export const JobSummary = z
  .object({
    ...jobIdentity,
    status: jobStatus,
    queued_at: isoOrNull,
    started_at: isoOrNull,
    finished_at: isoOrNull,
    duration_s: num,
    gpu_seconds: num,
    peak_vram_mb: num,
    nodes_total: z.number(),
    outputs: z.number(),
    error: errorBrief.nullable(),
    lost_reason: str,
  })
  .register(API, { id: 'JobSummary' });

export const Jobs = z.object({ jobs: z.array(JobSummary), total: z.number(), sampled_at: iso }).register(API, { id: 'Jobs' });

const queueJob = z.object({
  ...jobIdentity,
  number: num,
  client_id: str,
  status: jobStatus,
  queued_at: isoOrNull,
  first_seen_at: iso,
  started_at: isoOrNull,
  nodes_total: z.number(),
  extra_data: z.record(z.string(), z.unknown()).describe('scalar extra_data, secrets removed'),
});

export const Queue = z
  .object({
    running: z.array(queueJob),
    pending: z.array(queueJob.extend({ position: z.number() })),
    queue_remaining: z.number(),
    rejected: z.array(
      z.object({ at: iso, instance: z.string(), job_id: str, prompt_id: str, reasons: z.array(z.string()), lines: z.array(z.string()), source: z.enum(['tap', 'log', 'tap+log']) }),
    ),
    as_of: iso,
    sampled_at: iso,
  })
  .register(API, { id: 'Queue' });

export const LogLine = z
  .object({
    seq: z.number(),
    ts: iso,
    level: z.string(),
    source: z.enum(['comfyui', 'podscope']),
    instance: z.string().optional(),
    message: z.string(),
    job_id: str,
  })
  .register(API, { id: 'LogLine' });

export const Logs = z.object({ lines: z.array(LogLine), buffered: z.number(), dropped: z.number(), sampled_at: iso }).register(API, { id: 'Logs' });

export const Artifact = z
  .object({
    instance: z.string(),
    job_id: z.string(),
    prompt_id: z.string(),
    node_id: z.string(),
    filename: z.string(),
    subfolder: z.string(),
    type: z.string(),
    kind: z.string(),
    format: str,
    url: z.string().describe('where podscope serves the file (GET, same access rule)'),
    size_bytes: num,
    exists: z.boolean().nullable(),
    mtime: isoOrNull,
    from_cache: z.boolean(),
    produced_by_job: str,
    wiped: z.boolean(),
  })
  .register(API, { id: 'Artifact' });

export const Artifacts = z.object({ job_id: str, artifacts: z.array(Artifact), output_dir_known: z.boolean(), sampled_at: iso }).register(API, { id: 'Artifacts' });

export const Memory = z
  .object({
    gpus: z.array(
      z.object({
        index: num,
        uuid: str,
        pci_bus_id: str,
        name: z.string(),
        total_mb: num,
        used_mb: num,
        free_mb: num,
        reserved_mb: num,
        lost: z.boolean(),
        lost_reason: str,
        sampled_at: iso,
        processes: z.array(z.object({ pid: num, name: z.string(), used_mb: num, sm_util_percent: num.optional(), mem_util_percent: num.optional() })),
        health: GpuHealth.nullable(),
        mig_devices: z.array(migDevice),
      }),
    ),
    processes_sampled_at: isoOrNull,
    mig_sampled_at: isoOrNull,
    processes_note: z.string(),
    comfyui: z.record(z.string(), z.unknown()).nullable().describe("ComfyUI's /system_stats in MB; null before it answered"),
    comfyui_instances: z.array(z.object({ name: z.string() }).catchall(z.unknown())),
    host: z.object({
      sampled_at: isoOrNull,
      memory_mb: z.object({ total: z.number(), available: z.number(), used: z.number(), swap_total: z.number(), swap_used: z.number() }).nullable(),
      disks: z.array(z.object({ role: z.string(), path: z.string(), instances: z.array(z.string()).optional(), total_gb: z.number(), free_gb: z.number(), used_percent: num })),
    }),
    podscope: z.object({ rss_mb: num, heap_used_mb: num, heap_total_mb: num, buffers: z.record(z.string(), z.unknown()) }),
    timeline: z.object({
      interval_ms: z.number(),
      points: z.array(z.object({ t: iso, gpus: z.array(z.object({ uuid: z.string(), used_mb: num, used_max_mb: num, utilization_percent: num, power_w: num, temperature_c: num })) })),
      job_peaks: z.array(z.object({ job_id: z.string(), prompt_id: z.string(), instance: z.string(), status: jobStatus, started_at: isoOrNull, finished_at: isoOrNull, peak_vram_mb: num })),
    }),
    sampled_at: iso,
  })
  .register(API, { id: 'Memory' });

export const Index = z
  .object({ service: z.literal('podscope'), version: z.string(), endpoints: z.array(z.object({ path: z.string(), methods: z.array(z.string()), description: z.string() })) })
  .register(API, { id: 'Index' });

/** The `data` of each `/debug/events` event, beside the fields every event carries. */
const eventBase = { type: z.string(), at: iso, instance: z.string().optional(), job_id: z.string().optional(), prompt_id: z.string().optional() };
const problemEvent = z.object({ ...eventBase, component: z.string(), code: z.string(), message: z.string(), severity: z.enum(['error', 'warning']), since: iso });
export const EVENT_DATA = {
  job_queued: z.object({ ...eventBase, number: num, client_id: str, queued_at: isoOrNull, nodes_total: z.number() }),
  job_started: z.object({ ...eventBase, started_at: isoOrNull, started_timing: timing }),
  node_started: z.object({ ...eventBase, node_id: z.string(), class_type: z.string(), title: str, started_at: isoOrNull, timing }),
  progress: z.object({ ...eventBase, node_id: str, class_type: str, steps: num, total: num, progress_percent: num }),
  node_finished: z.object({ ...eventBase, node_id: z.string(), class_type: z.string(), status: z.string(), steps: num, total: num, duration_ms: num, timing }),
  job_finished: z.object({
    ...eventBase,
    status: jobStatus,
    refined: z.boolean(),
    started_at: isoOrNull,
    finished_at: isoOrNull,
    duration_s: num,
    error: z.object({ node_id: str, class_type: str, exception_type: z.string(), exception_message: z.string(), oom: z.literal(true).optional() }).nullable(),
    lost_reason: str,
    gpu_seconds: num,
    peak_vram_mb: num,
    outputs: z.number(),
  }),
  rejection: z.object({ ...eventBase, rejected_at: iso, reasons: z.array(z.string()), source: z.enum(['tap', 'log', 'tap+log']) }),
  problem_started: problemEvent,
  problem_changed: problemEvent,
  problem_ended: problemEvent,
  gpu: z.object({ ...eventBase, sampled_at: iso, gpus: z.array(z.object({ index: num, uuid: str, utilization_percent: num, memory_used_mb: num, memory_total_mb: num, temperature_c: num, power_w: num, lost: z.boolean() })) }),
  gpu_xid: z.object({
    ...eventBase,
    gpu: num,
    uuid: str,
    xid: z.number(),
    meaning: z.string(),
    action: str,
    severity: z.enum(['error', 'warning']),
    reported_at: iso,
    jobs: z.array(z.object({ job_id: z.string(), prompt_id: z.string(), instance: z.string() })),
  }),
  // The stream's own events.
  gap: z.object({ reason: z.string(), lost: z.number().nullable(), oldest_id: str }),
  dropped: z.object({ reason: z.string() }),
  end: z.object({ reason: z.string() }),
} as const;

export type StatusAnswer = z.infer<typeof Status>;
export type WorkflowAnswer = z.infer<typeof Workflow>;
export type JobsAnswer = z.infer<typeof Jobs>;
export type QueueAnswer = z.infer<typeof Queue>;
export type MemoryAnswer = z.infer<typeof Memory>;
export type CurrentJobAnswer = z.infer<typeof CurrentJob>;
export type GpuAnswer = z.infer<typeof Gpu>;
