/**
 * /debug/memory as a view of the pod's state (views/memory.ts): each GPU's memory with its
 * processes, host memory and disks, podscope's own memory and buffers, and the VRAM timeline, with
 * what has not been read yet shown as null.
 */
import { describe, expect, it } from 'vitest';
import { memoryView } from '../../src/views/memory.js';
import { PodState, type PodParts } from '../../src/state/pod.js';
import { LogStore } from '../../src/state/logs.js';
import { GpuState } from '../../src/state/gpu.js';
import { HostState } from '../../src/state/host.js';
import { loadConfig } from '../../src/config.js';
import { Scrubber } from '../../src/secrets.js';
import { fixtureRows } from '../helpers/gpu-rows.js';

const T0 = Date.parse('2026-11-24T00:00:00Z');
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function pod(parts: Partial<PodParts> = {}, now = T0) {
  const config = loadConfig({ RUNPOD_POD_ID: 'pod_test' });
  let t = now;
  const state = new PodState({ config, version: 't', scrubber: new Scrubber([]), env: {}, now: () => t, parts });
  return { state, config, advance: (ms: number) => (t += ms) };
}

function withGpu(fixture = 'h200-x1.drv590.load') {
  const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 100 });
  return { ...pod({ gpu }), gpu, rows: fixtureRows(fixture) };
}

describe('before anything is sampled', () => {
  it('has no GPUs, no host sample, and podscope’s own memory unknown, each null or empty', () => {
    const v = memoryView(pod({ gpu: null }).state);
    expect(v.gpus).toEqual([]);
    expect(v.host).toEqual({ sampled_at: null, memory_mb: null, disks: [] });
    expect(v.comfyui).toBeNull();
    expect(v.podscope).toMatchObject({ rss_mb: null, heap_used_mb: null, heap_total_mb: null });
    expect(v.processes_sampled_at).toBeNull();
    expect(v.timeline.points).toEqual([]);
    expect(v.sampled_at).toBe('2026-11-24T00:00:00.000Z');
  });
});

describe('GPU memory', () => {
  it('shows each GPU’s total, used, free and reserved memory as nvidia-smi read it', () => {
    const { state, gpu, rows } = withGpu();
    gpu.applySample(T0, rows);
    const [g] = memoryView(state).gpus;
    expect(g).toMatchObject({
      index: rows[0]!.index,
      uuid: rows[0]!.uuid,
      name: 'NVIDIA H200',
      total_mb: rows[0]!.memory_total_mb,
      used_mb: rows[0]!.memory_used_mb,
      free_mb: rows[0]!.memory_free_mb,
      reserved_mb: rows[0]!.memory_reserved_mb,
      lost: false,
      processes: [],
      mig_devices: [],
      health: null,
    });
  });

  it('lists the processes on each GPU, with when they were read', () => {
    const { state, gpu, rows } = withGpu();
    gpu.applySample(T0, rows);
    gpu.setComputeApps(T0 + 500, [
      { gpu_uuid: rows[0]!.uuid, pid: 10291, used_memory_mb: 2566, process_name: '/root/tools/memhog' },
      { gpu_uuid: 'GPU-other', pid: 1, used_memory_mb: 1, process_name: 'elsewhere' },
    ]);
    const v = memoryView(state);
    expect(v.gpus[0]!.processes).toEqual([{ pid: 10291, name: '/root/tools/memhog', used_mb: 2566 }]);
    expect(v.processes_sampled_at).toBe('2026-11-24T00:00:00.500Z');
    expect(v.processes_note).toMatch(/best effort/);
  });

  it('keeps a process whose memory the driver does not report (Windows) as null', () => {
    const { state, gpu, rows } = withGpu('rtx2080s-x1-windows.drv591.load');
    gpu.applySample(T0, rows);
    gpu.setComputeApps(T0, [{ gpu_uuid: rows[0]!.uuid, pid: 2056, used_memory_mb: null, process_name: 'C:\\Windows\\System32\\dwm.exe' }]);
    expect(memoryView(state).gpus[0]!.processes).toEqual([{ pid: 2056, name: 'C:\\Windows\\System32\\dwm.exe', used_mb: null }]);
  });
});

describe('the VRAM timeline', () => {
  it('has one point per sample with each GPU’s memory, utilization, power and temperature', () => {
    const { state, gpu, rows } = withGpu();
    for (let i = 0; i < 3; i++) gpu.applySample(T0 + i * 1000, rows);
    const { timeline } = memoryView(state);
    expect(timeline.interval_ms).toBe(1000);
    expect(timeline.points.map((p) => p.t)).toEqual(['2026-11-24T00:00:00.000Z', '2026-11-24T00:00:01.000Z', '2026-11-24T00:00:02.000Z']);
    // nvidia-smi reads memory once a period: the period's maximum is that reading.
    expect(timeline.points[0]!.gpus[0]).toEqual({ uuid: rows[0]!.uuid, used_mb: rows[0]!.memory_used_mb, used_max_mb: rows[0]!.memory_used_mb, utilization_percent: rows[0]!.utilization_percent, power_w: rows[0]!.power_w, temperature_c: rows[0]!.temperature_c });
  });

  it('keeps the newest points asked for', () => {
    const { state, gpu, rows } = withGpu();
    for (let i = 0; i < 10; i++) gpu.applySample(T0 + i * 1000, rows);
    const points = memoryView(state, { timelinePoints: 2 }).timeline.points;
    expect(points.map((p) => p.t)).toEqual(['2026-11-24T00:00:08.000Z', '2026-11-24T00:00:09.000Z']);
  });
});

describe('host memory and disks', () => {
  it('are shown in MiB and GiB, with each disk’s use to a tenth of a percent', () => {
    const host = new HostState();
    const { state } = pod({ host });
    host.set({
      sampled_at: '2026-11-24T00:00:00.000Z',
      memory: { total_bytes: 24 * GIB, available_bytes: 20 * GIB, used_bytes: 4 * GIB, swap_total_bytes: 0, swap_used_bytes: 0 },
      disks: [{ path: '/workspace', role: 'workspace', total_bytes: 100 * GIB, free_bytes: 33.3 * GIB, used_ratio: 0.667 }],
      process: { rss_bytes: 80.25 * MIB, heap_used_bytes: 30 * MIB, heap_total_bytes: 50 * MIB, external_bytes: 0, array_buffers_bytes: 0, open_fds: 20 },
      event_loop: null,
    });
    const v = memoryView(state);
    expect(v.host).toEqual({
      sampled_at: '2026-11-24T00:00:00.000Z',
      memory_mb: { total: 24576, available: 20480, used: 4096, swap_total: 0, swap_used: 0 },
      disks: [{ role: 'workspace', path: '/workspace', total_gb: 100, free_gb: 33.3, used_percent: 66.7 }],
    });
    expect(v.podscope).toMatchObject({ rss_mb: 80.3, heap_used_mb: 30, heap_total_mb: 50 });
  });

  it('shows host memory as null when it could not be read, and a disk of unknown use as null', () => {
    const host = new HostState();
    const { state } = pod({ host });
    host.set({ sampled_at: 'x', memory: null, disks: [{ path: '/proc', role: 'workspace', total_bytes: 0, free_bytes: 0, used_ratio: null }], process: null, event_loop: null });
    const v = memoryView(state);
    expect(v.host?.memory_mb).toBeNull();
    expect(v.host?.disks[0]!.used_percent).toBeNull();
  });
});

describe('buffers', () => {
  it('lists every ring buffer’s fill: the GPU timeline, jobs, logs, artifacts and events', () => {
    const logs = new LogStore(20_000, 16 * MIB);
    logs.append({ ts: T0, level: 'info', source: 'comfyui', instance: '8188', message: 'hello', job_id: null });
    const { state } = pod({ logs });
    const buffers = memoryView(state).podscope.buffers;
    expect(Object.keys(buffers)).toEqual(['gpu_timeline', 'jobs', 'logs', 'artifacts', 'events']);
    expect(buffers.logs).toMatchObject({ entries: 1, capacity_entries: 20_000, capacity_bytes: 16 * MIB, dropped: 0 });
    expect(buffers.jobs).toMatchObject({ entries: 0, capacity_entries: 200 });
  });

  it('has no GPU timeline when GPU sampling is off', () => {
    expect(Object.keys(memoryView(pod({ gpu: null }).state).podscope.buffers)).toEqual(['jobs', 'logs', 'artifacts', 'events']);
  });
});
