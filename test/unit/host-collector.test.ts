/**
 * The host collector (collectors/host.ts) through its seams: host memory from
 * systeminformation's async mem(), free space where ComfyUI writes outputs and on /workspace,
 * and the problems a full or missing output disk raises.
 */
import { describe, expect, it } from 'vitest';
import { HostCollector } from '../../src/collectors/host.js';
import { HealthBoard } from '../../src/state/health.js';
import { HostState } from '../../src/state/host.js';
import { nearlyFull } from '../../src/shared/host.js';

const GIB = 1024 ** 3;

/** systeminformation's mem() answer from a 24 GiB machine (the fields podscope reads). */
const MEM = { total: 24 * GIB, available: 20 * GIB, swaptotal: 2 * GIB, swapused: 0.5 * GIB };

/** A statfs answer of `total` bytes with `free` available, in 4 KiB blocks. */
function fs(total: number, free: number) {
  return { bsize: 4096, blocks: total / 4096, bavail: free / 4096 };
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed`), { code });
}

/** A stand-in for Node's delay monitor holding `count` ticks with the given figures (nanoseconds). */
function loopMonitor(count: number) {
  const ms = 1e6;
  const m = {
    count,
    min: 100 * ms,
    max: 250 * ms,
    mean: 110 * ms,
    stddev: 20 * ms,
    percentile: (p: number) => ({ 50: 101 * ms, 90: 120 * ms, 99: 200 * ms })[p] ?? NaN,
    resets: 0,
    reset() {
      m.resets++;
      m.count = 0;
    },
    enable: () => true,
    disable: () => true,
  };
  return m;
}

function collector(opts: { mem?: () => Promise<unknown>; disks?: Record<string, ReturnType<typeof fs> | NodeJS.ErrnoException>; outputDir?: string; loop?: ReturnType<typeof loopMonitor> } = {}) {
  const health = new HealthBoard();
  const state = new HostState();
  const disks = opts.disks ?? { '/workspace/ComfyUI/output': fs(100 * GIB, 60 * GIB), '/workspace': fs(100 * GIB, 60 * GIB) };
  const c = new HostCollector({
    health,
    state,
    outputDirs: ('outputDir' in opts ? [opts.outputDir] : ['/workspace/ComfyUI/output']).filter((p): p is string => p !== undefined).map((path) => ({ path, instances: ['8188'] })),
    workspaceDir: '/workspace',
    readMemory: (opts.mem ?? (async () => MEM)) as never,
    loopDelay: opts.loop ?? loopMonitor(0),
    readFs: async (path) => {
      const d = disks[path];
      if (!d) throw errno('ENOENT');
      if (d instanceof Error) throw d;
      return d;
    },
  });
  return { c, health, state };
}

describe('host memory', () => {
  it('is read as total, available, used (total less available) and swap', async () => {
    const { c, state } = collector();
    await c.tick();
    expect(state.snapshot().memory).toEqual({ total_bytes: 24 * GIB, available_bytes: 20 * GIB, used_bytes: 4 * GIB, swap_total_bytes: 2 * GIB, swap_used_bytes: 0.5 * GIB });
  });

  it('is null, and the run a failure with its code, when it cannot be read; disks are still read', async () => {
    const { c, state, health } = collector({ mem: () => Promise.reject(new Error('no /proc/meminfo')) });
    await c.tick();
    expect(state.snapshot().memory).toBeNull();
    expect(state.snapshot().disks).toHaveLength(2);
    expect(health.get('host')).toMatchObject({ ok: false, last_error: { code: 'HOST_MEMORY_UNREADABLE' } });
  });

  it('shows nothing sampled before the first run', () => {
    const { state } = collector();
    expect(state.snapshot()).toEqual({ sampled_at: null, memory: null, disks: [], process: null, event_loop: null });
  });
});

describe('disks', () => {
  it('are read for the output directory and the workspace, with their roles', async () => {
    const { c, state } = collector();
    await c.tick();
    expect(state.snapshot().disks).toEqual([
      { path: '/workspace/ComfyUI/output', role: 'comfyui_output', instances: ['8188'], total_bytes: 100 * GIB, free_bytes: 60 * GIB, used_ratio: 0.4 },
      { path: '/workspace', role: 'workspace', total_bytes: 100 * GIB, free_bytes: 60 * GIB, used_ratio: 0.4 },
    ]);
  });

  it("are read for each instance's output directory, once for a directory several share", async () => {
    const readFs = async () => ({ bsize: 4096, blocks: (100 * GIB) / 4096, bavail: (60 * GIB) / 4096 });
    const state = new HostState();
    const c = new HostCollector({
      health: new HealthBoard(),
      outputDirs: [
        { path: '/workspace/out/a', instances: ['gpu0', 'gpu1'] },
        { path: '/workspace/out/b', instances: ['gpu2'] },
      ],
      workspaceDir: '/workspace',
      state,
      readFs,
      readMemory: async () => ({ total: GIB, available: GIB, swaptotal: 0, swapused: 0 }) as never,
    });
    await c.tick();
    expect(state.snapshot().disks.map((d) => [d.path, d.instances ?? null])).toEqual([
      ['/workspace/out/a', ['gpu0', 'gpu1']],
      ['/workspace/out/b', ['gpu2']],
      ['/workspace', null],
    ]);
  });

  it('leave out the output directory when none is configured', async () => {
    const { c, state } = collector({ outputDir: undefined });
    await c.tick();
    expect(state.snapshot().disks.map((d) => d.role)).toEqual(['workspace']);
  });

  it('give a filesystem that reports no size an unknown use, not zero, and never call it full', async () => {
    const { c, state, health } = collector({ disks: { '/workspace/ComfyUI/output': fs(0, 0), '/workspace': fs(100 * GIB, 60 * GIB) } });
    await c.tick();
    expect(state.snapshot().disks[0]!.used_ratio).toBeNull();
    expect(health.hasProblem('host', 'DISK_NEARLY_FULL')).toBe(false);
  });

  it('raise DISK_NEARLY_FULL naming the filesystem, its free and total space, and why it matters', async () => {
    const { c, health } = collector({ disks: { '/workspace/ComfyUI/output': fs(100 * GIB, 1 * GIB), '/workspace': fs(100 * GIB, 60 * GIB) } });
    await c.tick();
    const p = health.problems().find((x) => x.code === 'DISK_NEARLY_FULL');
    expect(p).toMatchObject({ component: 'host', severity: 'error' });
    expect(p!.message).toBe('comfyui_output filesystem at /workspace/ComfyUI/output has 1.0 GiB free of 100.0 GiB; ComfyUI outputs fail silently on a full disk');
  });

  it('name every nearly full filesystem in one problem', async () => {
    const { c, health } = collector({ disks: { '/workspace/ComfyUI/output': fs(100 * GIB, 1 * GIB), '/workspace': fs(50 * GIB, 1 * GIB) } });
    await c.tick();
    expect(health.problems().find((x) => x.code === 'DISK_NEARLY_FULL')!.message).toBe(
      'comfyui_output filesystem at /workspace/ComfyUI/output has 1.0 GiB free of 100.0 GiB; workspace filesystem at /workspace has 1.0 GiB free of 50.0 GiB; ComfyUI outputs fail silently on a full disk',
    );
  });

  it('clear DISK_NEARLY_FULL once space is freed', async () => {
    const disks = { '/workspace/ComfyUI/output': fs(100 * GIB, 1 * GIB), '/workspace': fs(100 * GIB, 60 * GIB) };
    const { c, health } = collector({ disks });
    await c.tick();
    expect(health.hasProblem('host', 'DISK_NEARLY_FULL')).toBe(true);
    disks['/workspace/ComfyUI/output'] = fs(100 * GIB, 30 * GIB);
    await c.tick();
    expect(health.hasProblem('host', 'DISK_NEARLY_FULL')).toBe(false);
  });

  it('raise OUTPUT_DIR_MISSING with the error code when the output directory cannot be read, and clear it when it can', async () => {
    const disks: Record<string, ReturnType<typeof fs> | NodeJS.ErrnoException> = { '/workspace/ComfyUI/output': errno('EACCES'), '/workspace': fs(100 * GIB, 60 * GIB) };
    const { c, health } = collector({ disks });
    await c.tick();
    expect(health.problems().find((p) => p.code === 'OUTPUT_DIR_MISSING')).toMatchObject({
      component: 'artifacts',
      message: 'COMFYUI_OUTPUT_DIR /workspace/ComfyUI/output cannot be read: EACCES',
    });
    disks['/workspace/ComfyUI/output'] = fs(100 * GIB, 60 * GIB);
    await c.tick();
    expect(health.hasProblem('artifacts', 'OUTPUT_DIR_MISSING')).toBe(false);
  });

  it('skip a workspace that cannot be read, without a problem', async () => {
    const { c, state, health } = collector({ disks: { '/workspace/ComfyUI/output': fs(100 * GIB, 60 * GIB) } });
    await c.tick();
    expect(state.snapshot().disks.map((d) => d.role)).toEqual(['comfyui_output']);
    expect(health.problems()).toEqual([]);
  });
});

describe('podscope’s own memory', () => {
  it('is sampled with its open file descriptors', async () => {
    const { c, state } = collector();
    await c.tick();
    const p = state.snapshot().process!;
    expect(p.rss_bytes).toBeGreaterThan(0);
    expect(p.heap_used_bytes).toBeGreaterThan(0);
    expect(p.heap_used_bytes).toBeLessThanOrEqual(p.heap_total_bytes);
    expect(p.open_fds).toBeGreaterThan(0);
    expect(state.snapshot().sampled_at).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});

describe('the event loop’s delay', () => {
  it('is how late the loop ran beyond the monitor’s 100-ms schedule, in seconds, since the sample before, which then starts afresh', async () => {
    const loop = loopMonitor(40);
    const { c, state } = collector({ loop });
    await c.tick();
    const d = state.snapshot().event_loop!;
    // The monitor's figures hold its own 100-ms interval: 100 ms is on time, 250 ms is 150 ms late.
    expect(d.min_s).toBe(0);
    expect(d.max_s).toBeCloseTo(0.15, 9);
    expect(d.mean_s).toBeCloseTo(0.01, 9);
    expect(d.stddev_s).toBeCloseTo(0.02, 9);
    expect(d.p50_s).toBeCloseTo(0.001, 9);
    expect(d.p90_s).toBeCloseTo(0.02, 9);
    expect(d.p99_s).toBeCloseTo(0.1, 9);
    expect(d.lag_s).toBeGreaterThanOrEqual(0);
    expect(loop.resets).toBe(1);
  });

  it('is unknown (null), not zero, while the monitor has seen no tick', async () => {
    const { c, state } = collector({ loop: loopMonitor(0) });
    await c.tick();
    expect(state.snapshot().event_loop).toBeNull();
  });
});

describe('nearlyFull', () => {
  it.each([
    ['under 5 % free on a large disk', 1000 * GIB, 40 * GIB, true],
    ['5 % free on a large disk', 1000 * GIB, 50 * GIB, false],
    ['under 2 GiB free on a small disk, though over 5 %', 20 * GIB, 1.5 * GIB, true],
    ['2 GiB free on a small disk', 20 * GIB, 2 * GIB, false],
    ['a filesystem of no size', 0, 0, false],
  ])('%s: %s', (_name, total, free, full) => {
    expect(nearlyFull({ total_bytes: total, free_bytes: free })).toBe(full);
  });
});
