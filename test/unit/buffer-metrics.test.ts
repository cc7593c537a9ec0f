/**
 * The metrics read from the host sample, the log buffer and the artifacts ledger
 * (metrics/host.ts, metrics/logs.ts, metrics/artifacts.ts): what a scrape says, and that a value
 * podscope has not read yet is absent rather than 0.
 */
import { Exposition } from '../../src/metrics/registry.js';
import { describe, expect, it } from 'vitest';
import { registerHostMetrics } from '../../src/metrics/host.js';
import { registerLogMetrics } from '../../src/metrics/logs.js';
import { registerArtifactMetrics } from '../../src/metrics/artifacts.js';
import { LogStore } from '../../src/state/logs.js';
import { HostState } from '../../src/state/host.js';
import { ArtifactLedger } from '../../src/state/artifacts.js';
import { ComfyState } from '../../src/state/comfy.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { readFileSync } from 'node:fs';
import { scrape } from '../helpers/scrape.js';

function recording(name: string): RawInput[] {
  return readFileSync(new URL(`../fixtures/comfyui/recordings/${name}.jsonl`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

describe('host metrics', () => {
  function setup() {
    const registry = new Exposition();
    const host = new HostState();
    registerHostMetrics(registry, host);
    return { registry, host };
  }

  it('are absent before the first sample, never 0', async () => {
    const s = await scrape(setup().registry);
    expect(s.has('process_resident_memory_bytes')).toBe(false);
    expect(s.has('process_open_fds')).toBe(false);
    expect([...s.keys()].some((k) => k.startsWith('podscope_disk_free_bytes'))).toBe(false);
  });

  it('give podscope’s memory, descriptors and each disk’s free space from the sample', async () => {
    const { registry, host } = setup();
    host.set({
      sampled_at: '2026-11-24T00:00:00.000Z',
      memory: null,
      disks: [
        { path: '/workspace/ComfyUI/output', role: 'comfyui_output', total_bytes: 100, free_bytes: 40, used_ratio: 0.6 },
        { path: '/workspace', role: 'workspace', total_bytes: 100, free_bytes: 70, used_ratio: 0.3 },
      ],
      process: { rss_bytes: 123_456_789, heap_used_bytes: 1, heap_total_bytes: 2, external_bytes: 3, array_buffers_bytes: 4, open_fds: 42 },
      event_loop: null,
    });
    const s = await scrape(registry);
    expect(s.get('process_resident_memory_bytes')).toBe(123_456_789);
    expect(s.get('process_open_fds')).toBe(42);
    expect(s.get('podscope_disk_free_bytes{role="comfyui_output"}')).toBe(40);
    expect(s.get('podscope_disk_free_bytes{role="workspace"}')).toBe(70);
  });

  it('give the event loop’s delay from the sample, under prom-client’s names', async () => {
    const { registry, host } = setup();
    host.set({ sampled_at: 'x', memory: null, disks: [], process: null, event_loop: { lag_s: 0.0004, min_s: 0.1, max_s: 0.25, mean_s: 0.11, stddev_s: 0.02, p50_s: 0.101, p90_s: 0.12, p99_s: 0.2 } });
    const s = await scrape(registry);
    expect(s.get('nodejs_eventloop_lag_seconds')).toBe(0.0004);
    expect(s.get('nodejs_eventloop_lag_max_seconds')).toBe(0.25);
    expect(s.get('nodejs_eventloop_lag_p99_seconds')).toBe(0.2);
  });

  it('leave the event loop’s delay out before a first interval was measured', async () => {
    const { registry, host } = setup();
    host.set({ sampled_at: 'x', memory: null, disks: [], process: null, event_loop: null });
    const s = await scrape(registry);
    expect([...s.keys()].filter((k) => k.startsWith('nodejs_eventloop'))).toEqual([]);
  });

  it('leave the descriptor count out when /proc could not be read', async () => {
    const { registry, host } = setup();
    host.set({ sampled_at: 'x', memory: null, disks: [], process: { rss_bytes: 1, heap_used_bytes: 1, heap_total_bytes: 1, external_bytes: 0, array_buffers_bytes: 0, open_fds: null }, event_loop: null });
    const s = await scrape(registry);
    expect(s.has('process_open_fds')).toBe(false);
    expect(s.get('process_resident_memory_bytes')).toBe(1);
  });

  it('drop a disk that is no longer sampled', async () => {
    const { registry, host } = setup();
    host.set({ sampled_at: 'x', memory: null, disks: [{ path: '/w', role: 'workspace', total_bytes: 1, free_bytes: 1, used_ratio: 0 }], process: null, event_loop: null });
    await scrape(registry);
    host.set({ sampled_at: 'y', memory: null, disks: [], process: null, event_loop: null });
    expect([...(await scrape(registry)).keys()].some((k) => k.startsWith('podscope_disk_free_bytes'))).toBe(false);
  });
});

describe('log buffer metrics', () => {
  function setup(lines = 3) {
    const registry = new Exposition();
    const store = new LogStore(lines, 1024 * 1024);
    const stdout = { dropped: 0 };
    registerLogMetrics(registry, store, stdout);
    return { registry, store, stdout };
  }

  it('count lines by source and level, with what was dropped and what is held', async () => {
    const { registry, store } = setup(3);
    for (let i = 0; i < 4; i++) store.append({ ts: i, level: 'info', source: 'comfyui', instance: '8188', message: `line ${i}`, job_id: null });
    store.append({ ts: 5, level: 'error', source: 'podscope', instance: null, message: 'boom', job_id: null });
    const s = await scrape(registry);
    expect(s.get('podscope_log_lines_total{source="comfyui",level="info"}')).toBe(4);
    expect(s.get('podscope_log_lines_total{source="podscope",level="error"}')).toBe(1);
    expect(s.get('podscope_log_lines_dropped_total')).toBe(2);
    expect(s.get('podscope_log_buffer_lines')).toBe(3);
    expect(s.get('podscope_log_buffer_bytes')).toBe(store.ring.bytes);
  });

  it('show an empty buffer as 0 lines and 0 bytes, which is a fact, not an unknown', async () => {
    const s = await scrape(setup().registry);
    expect(s.get('podscope_log_buffer_lines')).toBe(0);
    expect(s.get('podscope_log_lines_dropped_total')).toBe(0);
  });

  it('count the lines stdout did not take, apart from the buffer\'s own drops', async () => {
    const { registry, stdout } = setup();
    expect((await scrape(registry)).get('podscope_stdout_lines_dropped_total')).toBe(0);
    stdout.dropped = 7;
    const s = await scrape(registry);
    expect(s.get('podscope_stdout_lines_dropped_total')).toBe(7);
    expect(s.get('podscope_log_lines_dropped_total')).toBe(0);
  });
});

describe('artifact and OOM metrics', () => {
  function setup() {
    const registry = new Exposition();
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
    const ledger = new ArtifactLedger(100);
    // The finish pipeline's step that counts OOM failures, alone.
    comfy.tracker.finishWith(registerArtifactMetrics(registry, ledger).jobFinished);
    return { registry, comfy, ledger };
  }

  it('count OOM failures from zero under both kinds', async () => {
    const s = await scrape(setup().registry);
    expect(s.get('podscope_oom_failures_total{kind="gpu"}')).toBe(0);
    expect(s.get('podscope_oom_failures_total{kind="ram_probable"}')).toBe(0);
  });

  it('count a job that failed with torch’s OutOfMemoryError as a GPU OOM, once', async () => {
    const { registry, comfy } = setup();
    comfy.tracker.applyQueue(1000, [decodeQueueItem([1, 'P', {}, {}, []])!], []);
    comfy.tracker.apply(2000, {
      type: 'execution_error',
      prompt_id: 'P',
      ts: 2000,
      executed: [],
      blocker: false,
      error: { node_id: '3', node_type: 'KSampler', exception_type: 'torch.OutOfMemoryError', exception_message: 'CUDA out of memory. Tried to allocate 20.00 GiB', traceback: [] },
    });
    comfy.tracker.apply(2100, { type: 'execution_error', prompt_id: 'P', ts: 2100, executed: [], blocker: false, error: { node_id: '3', node_type: 'KSampler', exception_type: 'torch.OutOfMemoryError', exception_message: 'again', traceback: [] } });
    expect((await scrape(registry)).get('podscope_oom_failures_total{kind="gpu"}')).toBe(1);
  });

  it('does not count an error that is not about memory', async () => {
    const { registry, comfy } = setup();
    comfy.tracker.applyQueue(1000, [decodeQueueItem([1, 'P', {}, {}, []])!], []);
    comfy.tracker.apply(2000, { type: 'execution_error', prompt_id: 'P', ts: 2000, executed: [], blocker: false, error: { node_id: '3', node_type: 'X', exception_type: 'RuntimeError', exception_message: 'podscope test node failed on purpose', traceback: [] } });
    const s = await scrape(registry);
    expect(s.get('podscope_oom_failures_total{kind="gpu"}')).toBe(0);
    expect(s.get('podscope_oom_failures_total{kind="ram_probable"}')).toBe(0);
  });

  it('count the outputs of the real ComfyUI’s prompts by kind, and not a cached replay of them', async () => {
    const { registry, comfy, ledger } = setup();
    replay(comfy.tracker, recording('tap-success'));
    replay(comfy.tracker, recording('tap-cached'));
    const fresh = comfy.tracker.all().find((j) => j.job_id.startsWith('job-found-'))!;
    const cached = comfy.tracker.all().find((j) => j.job_id.startsWith('job-cached-'))!;
    expect(ledger.addJob(fresh, 1).length).toBeGreaterThan(0);
    expect(ledger.addJob(cached, 2).length).toBeGreaterThan(0);
    const images = ledger.newest(100).filter((a) => !a.from_cache && a.kind === 'image').length;
    expect((await scrape(registry)).get('podscope_artifacts_produced_total{kind="image"}')).toBe(images);
    expect(images).toBe(ledger.forJob(fresh.prompt_id).length);
  });
});
