/**
 * What /debug/events says as the real ComfyUI's recorded prompts are replayed (collectors/events.ts):
 * one event per change a harness cares about, in order, progress coalesced, and outcomes with
 * their error summary.
 */
import { readFileSync } from 'node:fs';
import { Instances } from '../../src/state/instances.js';
import { afterEach, describe, expect, it } from 'vitest';
import { EventCollector, IDENTITY_WAIT_MS, PROGRESS_EVERY_MS, TAP_END_WAIT_MS } from '../../src/collectors/events.js';
import { EventJournal, type EventType } from '../../src/state/events.js';
import { ComfyState } from '../../src/state/comfy.js';
import { HealthBoard } from '../../src/state/health.js';
import { GpuState } from '../../src/state/gpu.js';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';
import { fixtureRows } from '../helpers/gpu-rows.js';
import { parseSseBlock } from '../helpers/sse.js';

function recording(name: string): RawInput[] {
  return readFileSync(new URL(`../fixtures/comfyui/recordings/${name}.jsonl`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

const running: EventCollector[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

function setup(opts: { gpu?: GpuState } = {}) {
  let now = 1_000_000;
  const clock = () => now;
  const journal = new EventJournal(10_000, 8 * 1024 * 1024, clock);
  const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 100 });
  const health = new HealthBoard(clock);
  const collector = new EventCollector({ journal, instances: new Instances(comfy), health, gpu: opts.gpu ?? null, gpuIntervalMs: 1000, now: clock });
  // The finish pipeline's step that tells event followers, alone.
  comfy.tracker.finishWith((job, refined) => collector.jobFinished(job, refined));
  collector.start(new AbortController().signal);
  running.push(collector);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const events = (): Array<{ type: EventType; job_id: string | null; [field: string]: any }> => journal.ring.toArray().map((e) => ({ job_id: e.value.job_id, ...parseSseBlock(e.value.frame.trimEnd())!.json }));
  /** Replays a recording, comparing after each input as the live collector does between arrivals. */
  const play = (name: string) =>
    replay(comfy.tracker, recording(name), (input) => {
      now = Math.max(now, input.t);
      collector.compare();
    });
  return { journal, comfy, health, collector, events, play, advance: (ms: number) => (now += ms) };
}

const typesOf = (events: Array<{ type: EventType; job_id: string | null }>, jobPrefix: string) => events.filter((e) => e.job_id?.startsWith(jobPrefix)).map((e) => e.type);

describe('a prompt the tap followed on the real ComfyUI', () => {
  it('is queued, started, each node started then finished, and finished, in that order', () => {
    const { play, events } = setup();
    play('tap-success');
    const types = typesOf(events(), 'job-found-');
    expect(types[0]).toBe('job_queued');
    expect(types[1]).toBe('job_started');
    expect(types.at(-1)).toBe('job_finished');
    const started = types.filter((t) => t === 'node_started').length;
    expect(started).toBeGreaterThan(0);
    expect(types.filter((t) => t === 'node_finished').length).toBe(started);
  });

  it('says each node finished with its status and its duration on ComfyUI’s clock', () => {
    const { play, events, comfy } = setup();
    play('tap-success');
    const job = comfy.tracker.all().find((j) => j.job_id.startsWith('job-found-'))!;
    for (const e of events().filter((x) => x.type === 'node_finished' && x.job_id === job.job_id)) {
      const node = job.nodes.get(e.node_id as string)!;
      expect(e).toMatchObject({ status: 'completed', duration_ms: node.finished_at! - node.started_at!, timing: 'comfyui' });
    }
  });

  it('says a node’s end as podscope saw it when the tap’s report of it does not come within TAP_END_WAIT_MS', () => {
    const { comfy, collector, events, advance } = setup();
    // The recording up to the first node's end as a frame saw it, without the tap's report of that end.
    const inputs = recording('tap-success');
    const cut = inputs.findIndex((r) => r.kind === 'frame' && r.type === 'podscope.node_end');
    let now = 0;
    replay(comfy.tracker, inputs.slice(0, cut), (input) => {
      now = input.t;
      collector.compare();
    });
    const job = comfy.tracker.all().find((j) => j.job_id.startsWith('job-found-'))!;
    const first = job.nodes.get(job.order[0]!)!;
    expect(first).toMatchObject({ status: 'completed', end_timing: 'observed' });
    const finished = () => events().filter((e) => e.type === 'node_finished' && e.job_id === job.job_id);
    expect(finished()).toEqual([]);
    advance(Math.max(0, now - 1_000_000) + TAP_END_WAIT_MS);
    collector.compare();
    expect(finished()).toEqual([expect.objectContaining({ node_id: first.node_id, status: 'completed', timing: 'observed' })]);
  });

  it('ends with the outcome, the run time and no error', () => {
    const { play, events } = setup();
    play('tap-success');
    const end = events().find((e) => e.type === 'job_finished' && e.job_id?.startsWith('job-found-'))!;
    expect(end).toMatchObject({ status: 'success', refined: false, error: null, lost_reason: null });
    expect(end.duration_s).toEqual(expect.any(Number));
  });

  it('says nothing of the jobs that ended before podscope started (read from history)', () => {
    const { play, events, comfy } = setup();
    play('tap-cached');
    const earlier = comfy.tracker.all().filter((j) => !j.job_id.startsWith('job-cached-'));
    expect(earlier.length).toBeGreaterThan(0);
    for (const j of earlier) expect(events().filter((e) => e.job_id === j.job_id)).toEqual([]);
  });
});

describe('a prompt that failed on the real ComfyUI', () => {
  it('finishes with the error’s node, class, exception and message', () => {
    const { play, events } = setup();
    play('tap-error');
    const end = events().find((e) => e.type === 'job_finished' && e.job_id?.startsWith('job-error-'))!;
    expect(end).toMatchObject({ status: 'error', error: { class_type: 'PodscopeRaise', exception_message: 'podscope test node failed on purpose' } });
  });

  it('says the node that raised finished in error', () => {
    const { play, events } = setup();
    play('tap-error');
    expect(events().some((e) => e.type === 'node_finished' && e.job_id?.startsWith('job-error-') && e.status === 'error')).toBe(true);
  });
});

describe('a prompt another client ran, seen without the tap', () => {
  it('is queued and finished, with ComfyUI’s outcome', () => {
    const { play, events } = setup();
    play('observer-success');
    const all = events();
    const finished = all.filter((e) => e.type === 'job_finished');
    expect(finished.length).toBeGreaterThan(0);
    for (const f of finished) expect(all.findIndex((e) => e.type === 'job_queued' && e.job_id === f.job_id)).toBeLessThan(all.indexOf(f));
  });
});

describe('a job first seen in a broadcast, before /queue names who sent it', () => {
  const item = decodeQueueItem([1, 'P', { '3': { class_type: 'KSampler', inputs: { steps: 4 } } }, { job_id: 'job-late' }, ['3']])!;

  it('says nothing of it until its platform job id is read, then everything under that id', () => {
    const { comfy, collector, events, advance } = setup();
    comfy.tracker.apply(1_000_000, { type: 'progress', prompt_id: 'P', node: '3', value: 1, max: 4 });
    collector.compare();
    expect(events()).toEqual([]);
    advance(1000);
    comfy.tracker.applyQueue(1_001_000, [item], []);
    collector.compare();
    expect(events().map((e) => e.job_id)).toEqual(events().map(() => 'job-late'));
    expect(events()[0]!.type).toBe('job_queued');
  });

  it('goes out under its prompt id once the wait is over', () => {
    const { comfy, collector, events, advance } = setup();
    comfy.tracker.apply(1_000_000, { type: 'execution_start', prompt_id: 'P', ts: 1_000_000 });
    advance(IDENTITY_WAIT_MS);
    collector.compare();
    expect(events().slice(0, 2)).toEqual([expect.objectContaining({ type: 'job_queued', job_id: 'P' }), expect.objectContaining({ type: 'job_started', job_id: 'P' })]);
  });

  it('is said whole when it ends during the wait', () => {
    const { comfy, events } = setup();
    comfy.tracker.apply(1_000_000, { type: 'execution_start', prompt_id: 'P', ts: 1_000_000 });
    comfy.tracker.apply(1_000_500, { type: 'execution_success', prompt_id: 'P', ts: 1_000_500 });
    expect(events().map((e) => e.type)).toEqual(['job_queued', 'job_started', 'job_finished']);
  });
});

describe('a node that started and finished between two looks', () => {
  it('is said to start, then to finish', () => {
    const { comfy, collector, events } = setup();
    const graph = { '4': { class_type: 'CheckpointLoaderSimple', inputs: {} }, '3': { class_type: 'KSampler', inputs: { model: ['4', 0] } } };
    comfy.tracker.applyQueue(1_000_000, [decodeQueueItem([1, 'P', graph, { job_id: 'j' }, ['3']])!], []);
    collector.compare();
    comfy.tracker.apply(1_000_100, { type: 'node_start', prompt_id: 'P', node_id: '4', class_type: 'CheckpointLoaderSimple', t: 1_000_100 });
    comfy.tracker.apply(1_000_200, { type: 'node_end', prompt_id: 'P', node_id: '4', class_type: 'CheckpointLoaderSimple', t: 1_000_200, outcome: 'success', peak_vram_bytes: null });
    collector.compare();
    const node4 = events().filter((e) => e.node_id === '4');
    expect(node4.map((e) => e.type)).toEqual(['node_started', 'node_finished']);
    expect(node4[1]).toMatchObject({ duration_ms: 100 });
  });
});

describe('a job podscope called lost that ComfyUI’s record later refines', () => {
  it('is said to finish again with the real outcome, marked refined, and nothing else', () => {
    const { comfy, collector, events } = setup();
    const item = decodeQueueItem([1, 'P', {}, { job_id: 'j' }, []])!;
    comfy.tracker.applyQueue(1_000_000, [item], []);
    collector.compare();
    comfy.tracker.applyMissing(1_001_000, 'P', 'gone', { atOnce: true });
    const before = events().length;
    comfy.tracker.applyHistory(1_002_000, { prompt_id: 'P', item, messages: [{ type: 'execution_start', prompt_id: 'P', ts: 1_000_000 }, { type: 'execution_success', prompt_id: 'P', ts: 1_000_900 }], outputs: [], status_str: 'success', completed: true });
    const after = events().slice(before);
    expect(after).toEqual([expect.objectContaining({ type: 'job_finished', status: 'success', refined: true })]);
    expect(events().filter((e) => e.type === 'job_finished').map((e) => e.status)).toEqual(['lost', 'success']);
  });
});

describe('progress', () => {
  function sampler() {
    const t = setup();
    const graph = { '3': { class_type: 'KSampler', inputs: { steps: 20 } } };
    t.comfy.tracker.applyQueue(1_000_000, [decodeQueueItem([1, 'P', graph, { job_id: 'job-1' }, ['3']])!], []);
    t.comfy.tracker.apply(1_000_000, { type: 'executing', prompt_id: 'P', node: '3' });
    t.collector.compare();
    const step = (n: number) => {
      t.comfy.tracker.apply(1_000_000, { type: 'progress', prompt_id: 'P', node: '3', value: n, max: 20 });
      t.collector.compare();
    };
    const progress = () => t.events().filter((e) => e.type === 'progress');
    return { ...t, step, progress };
  }

  it('is said at once for the first step', () => {
    const { step, progress } = sampler();
    step(1);
    expect(progress()).toEqual([expect.objectContaining({ node_id: '3', class_type: 'KSampler', steps: 1, total: 20 })]);
  });

  it('is said at most once per interval, however many steps come', () => {
    const { step, progress, advance } = sampler();
    step(1);
    for (let i = 2; i <= 10; i++) step(i);
    expect(progress()).toHaveLength(1);
    advance(PROGRESS_EVERY_MS);
    step(11);
    expect(progress().map((p) => p.steps)).toEqual([1, 11]);
  });

  it('owes the latest step after a burst, and says it once the interval has passed', () => {
    const { step, progress, advance, collector } = sampler();
    step(1);
    step(2);
    step(3);
    advance(PROGRESS_EVERY_MS);
    collector.compare();
    expect(progress().map((p) => p.steps)).toEqual([1, 3]);
    collector.compare();
    expect(progress()).toHaveLength(2);
  });
});

describe('problems, rejections and GPU samples', () => {
  it('are said as a problem starts, changes severity and ends', () => {
    const { health, events } = setup();
    health.raise('gpu', 'GPU_MEMORY_ERRORS', 'errors', 'warning');
    health.raise('gpu', 'GPU_MEMORY_ERRORS', 'errors', 'error');
    health.clear('gpu', 'GPU_MEMORY_ERRORS');
    expect(events().map((e) => [e.type, e.code, e.severity])).toEqual([
      ['problem_started', 'GPU_MEMORY_ERRORS', 'warning'],
      ['problem_changed', 'GPU_MEMORY_ERRORS', 'error'],
      ['problem_ended', 'GPU_MEMORY_ERRORS', 'error'],
    ]);
  });

  it('say a rejection with its reasons, under its job when the tap knew it', () => {
    const { comfy, events } = setup();
    comfy.addRejection({ at: 1_000_000, job_id: 'job-r', prompt_id: 'PR', reasons: ['KSampler 3: Value 0 smaller than min of 1: steps'], lines: [], source: 'tap' });
    comfy.addRejection({ at: 1_000_100, job_id: null, prompt_id: null, reasons: ['x'], lines: ['invalid prompt: …'], source: 'log' });
    expect(events()).toEqual([
      expect.objectContaining({ type: 'rejection', job_id: 'job-r', reasons: ['KSampler 3: Value 0 smaller than min of 1: steps'], source: 'tap' }),
    ]);
  });

  it('say a rejection the log saw alone, without a job', () => {
    const { comfy, events } = setup();
    comfy.addRejection({ at: 1_000_000, job_id: null, prompt_id: null, reasons: ['Cannot execute because node NoSuchNode does not exist.'], lines: [], source: 'log' });
    expect(events()).toEqual([expect.objectContaining({ type: 'rejection', job_id: null, source: 'log' })]);
  });

  it('say each GPU sample once', () => {
    const gpu = new GpuState({ startedAt: 0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
    const { collector, events } = setup({ gpu });
    collector.gpuSample();
    expect(events()).toEqual([]);
    gpu.applySample(1000, fixtureRows('h200-x1.drv590.load'));
    collector.gpuSample();
    collector.gpuSample();
    const samples = events().filter((e) => e.type === 'gpu');
    expect(samples).toHaveLength(1);
    expect(samples[0]).toMatchObject({ sampled_at: '1970-01-01T00:00:01.000Z', gpus: [expect.objectContaining({ index: 0, lost: false })] });
  });
});

describe('once stopped', () => {
  it('says nothing more', async () => {
    const { collector, health, events } = setup();
    await collector.stop();
    health.raise('gpu', 'GPU_LOST', 'x');
    expect(events()).toEqual([]);
  });
});
