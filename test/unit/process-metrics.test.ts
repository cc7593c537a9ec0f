/**
 * The Node.js process families (metrics/process.ts), under the names prom-client's default
 * metrics use, read by podscope itself at a scrape.
 */
import { describe, expect, it } from 'vitest';
import { Exposition } from '../../src/metrics/registry.js';
import { registerProcessMetrics } from '../../src/metrics/process.js';
import { until } from '../helpers/wait.js';
import { scrape } from '../helpers/scrape.js';

function registry(): Exposition {
  const r = new Exposition();
  registerProcessMetrics(r);
  return r;
}

describe('process metrics', () => {
  it('give CPU time, user plus system making the total', async () => {
    const s = await scrape(registry());
    const user = s.get('process_cpu_user_seconds_total')!;
    const system = s.get('process_cpu_system_seconds_total')!;
    expect(user).toBeGreaterThan(0);
    expect(system).toBeGreaterThanOrEqual(0);
    expect(s.get('process_cpu_seconds_total')).toBeCloseTo(user + system, 9);
  });

  it('give the start time and the version of Node.js', async () => {
    const s = await scrape(registry());
    expect(Math.abs(s.get('process_start_time_seconds')! - (Date.now() / 1000 - process.uptime()))).toBeLessThanOrEqual(1);
    const [major, minor, patch] = process.version.slice(1).split('.');
    expect(s.get(`nodejs_version_info{version="${process.version}",major="${major}",minor="${minor}",patch="${patch}"}`)).toBe(1);
  });

  it('give V8’s heap spaces by name, used never over total', async () => {
    const s = await scrape(registry());
    const used = s.get('nodejs_heap_space_size_used_bytes{space="old"}')!;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(s.get('nodejs_heap_space_size_total_bytes{space="old"}')!);
    expect(s.has('nodejs_heap_space_size_available_bytes{space="new"}')).toBe(true);
  });

  it('count the resources keeping the event loop alive, by type', async () => {
    const timer = setInterval(() => undefined, 60_000);
    try {
      const s = await scrape(registry());
      expect(s.get('nodejs_active_resources{type="Timeout"}')).toBeGreaterThanOrEqual(1);
    } finally {
      clearInterval(timer);
    }
  });

  it('count garbage-collection pauses by kind, as a histogram', async () => {
    const r = registry();
    let junk: unknown[] = [];
    const count = async () => (await scrape(r)).get('nodejs_gc_duration_seconds_count{kind="minor"}') ?? 0;
    await until(async () => {
      // Young objects enough for a scavenge; the observer reports it a moment later.
      for (let i = 0; i < 200_000; i++) junk.push({ i });
      junk = [];
      return (await count()) > 0 || null;
    }, 20_000);
    const s = await scrape(r);
    const n = s.get('nodejs_gc_duration_seconds_count{kind="minor"}')!;
    expect(s.get('nodejs_gc_duration_seconds_bucket{kind="minor",le="+Inf"}')).toBe(n);
    expect(s.get('nodejs_gc_duration_seconds_bucket{kind="minor",le="0.001"}')).toBeLessThanOrEqual(n);
    expect(s.get('nodejs_gc_duration_seconds_sum{kind="minor"}')).toBeGreaterThan(0);
  });

  it('leave out what prom-client reads at every scrape at a cost: the delay histogram and the handle list', async () => {
    const names = [...(await scrape(registry())).keys()];
    expect(names.filter((n) => /^nodejs_(eventloop_lag|active_handles|active_requests)/.test(n))).toEqual([]);
  });
});
