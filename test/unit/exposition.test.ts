/**
 * podscope's registry (metrics/registry.ts): families read at scrape time are written straight
 * into the exposition, in exactly the text prom-client writes for the same series.
 */
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Exposition, LabelSet, readFamily, type Series } from '../../src/metrics/registry.js';

/** The same families in podscope's registry and, through get(), in a plain prom-client one. */
async function both(define: (r: Registry) => void): Promise<[string, string]> {
  const fast = new Exposition();
  const plain = new Registry();
  define(fast);
  define(plain);
  return [await fast.metrics(), await plain.metrics()];
}

const series = (...s: Series[]) => (out: Series[]) => out.push(...s);

describe('the exposition of read families', () => {
  it('is the text prom-client writes: escaping, label order, NaN and infinities, label-less series', async () => {
    const [fast, plain] = await both((r) => {
      readFamily(r, 'x_gauge', 'Help with a \\ backslash\nand a newline.', 'gauge', series({ labels: { gpu: '0', name: 'NVIDIA "H100"\\80GB\nHBM3' }, value: 1.5 }, { labels: { gpu: '1', name: 'plain' }, value: NaN }, { labels: { gpu: '2', name: 'up' }, value: Infinity }, { labels: { gpu: '3', name: 'down' }, value: -Infinity }));
      readFamily(r, 'x_total', 'A counter without labels.', 'counter', series({ labels: {}, value: 42 }));
    });
    expect(fast).toBe(plain);
    expect(fast).toContain('x_gauge{gpu="0",name="NVIDIA \\"H100\\"\\\\80GB\\nHBM3"} 1.5');
  });

  it('writes a histogram’s buckets, sum and count under their names', async () => {
    const [fast, plain] = await both((r) =>
      readFamily(r, 'x_seconds', 'A histogram.', 'histogram', series({ labels: { route: '/a', le: '0.1' }, value: 1, suffix: '_bucket' }, { labels: { route: '/a', le: '+Inf' }, value: 2, suffix: '_bucket' }, { labels: { route: '/a' }, value: 0.3, suffix: '_sum' }, { labels: { route: '/a' }, value: 2, suffix: '_count' })),
    );
    expect(fast).toBe(plain);
    expect(fast.split('\n').slice(2, 6)).toEqual(['x_seconds_bucket{route="/a",le="0.1"} 1', 'x_seconds_bucket{route="/a",le="+Inf"} 2', 'x_seconds_sum{route="/a"} 0.3', 'x_seconds_count{route="/a"} 2']);
  });

  it('says HELP and TYPE for a family with no series now, as prom-client does', async () => {
    const [fast, plain] = await both((r) => readFamily(r, 'x_empty', 'Nothing yet.', 'gauge', () => {}));
    expect(fast).toBe(plain);
    expect(fast).toBe('# HELP x_empty Nothing yet.\n# TYPE x_empty gauge\n');
  });

  it('keeps one series per label set, the last one, so a duplicate never voids the scrape', async () => {
    const r = new Exposition();
    readFamily(r, 'x_dup', 'Duplicates.', 'gauge', series({ labels: { gpu: 'unknown', uuid: '' }, value: 1 }, { labels: { gpu: 'unknown', uuid: '' }, value: 2 }));
    expect((await r.metrics()).split('\n').filter((l) => l.startsWith('x_dup{'))).toEqual(['x_dup{gpu="unknown",uuid=""} 2']);
  });

  it('writes a kept label set, and the sets made from it with one label more, as prom-client writes the labels', async () => {
    const gpu = new LabelSet({ gpu: '0', uuid: 'GPU-1' });
    const [fast, plain] = await both((r) =>
      readFamily(r, 'x_info', 'Kept labels.', 'gauge', series({ labels: gpu.with('name', 'NVIDIA "H100"\\80GB').with('driver', '590.44.01'), value: 1 }, { labels: gpu, value: 2 }, { labels: new LabelSet({}), value: 3 })),
    );
    expect(fast).toBe(plain);
    expect(fast).toContain('x_info{gpu="0",uuid="GPU-1",name="NVIDIA \\"H100\\"\\\\80GB",driver="590.44.01"} 1');
  });

  it('gives back the same set for the same label added again', () => {
    const gpu = new LabelSet({ gpu: '0', uuid: 'GPU-1' });
    expect(gpu.with('reason', 'sw_power_cap')).toBe(gpu.with('reason', 'sw_power_cap'));
    expect(gpu.with('reason', 'hw_slowdown')).not.toBe(gpu.with('reason', 'sw_power_cap'));
  });

  it('keeps one series per label set when the sets are kept too, the last one, even from two sets alike', async () => {
    const gpu = new LabelSet({ gpu: '0', uuid: 'GPU-1' });
    const twin = new LabelSet({ gpu: '0', uuid: 'GPU-1' });
    const r = new Exposition();
    readFamily(r, 'x_dup', 'Duplicates.', 'gauge', series({ labels: gpu.with('kind', 'a'), value: 1 }, { labels: twin.with('kind', 'a'), value: 2 }, { labels: gpu.with('kind', 'b'), value: 3 }));
    expect((await r.metrics()).split('\n').filter((l) => l.startsWith('x_dup{'))).toEqual(['x_dup{gpu="0",uuid="GPU-1",kind="a"} 2', 'x_dup{gpu="0",uuid="GPU-1",kind="b"} 3']);
  });

  it('comes after prom-client’s own families, one blank line between families', async () => {
    const r = new Exposition();
    new Counter({ name: 'a_total', help: 'Counted.', registers: [r] }).inc(3);
    readFamily(r, 'b', 'Read.', 'gauge', series({ labels: {}, value: 1 }));
    expect(await r.metrics()).toBe('# HELP a_total Counted.\n# TYPE a_total counter\na_total 3\n\n# HELP b Read.\n# TYPE b gauge\nb 1\n');
  });

  it('refuses a second family under a name already taken, whichever kind came first', () => {
    const r = new Exposition();
    readFamily(r, 'taken', 'One.', 'gauge', () => {});
    expect(() => readFamily(r, 'taken', 'Two.', 'gauge', () => {})).toThrow(/already been registered/);
    expect(() => new Counter({ name: 'taken', help: 'Three.', registers: [r] })).toThrow(/already been registered/);
    new Counter({ name: 'other_total', help: 'Four.', registers: [r] });
    expect(() => readFamily(r, 'other_total', 'Five.', 'counter', () => {})).toThrow(/already been registered/);
  });
});
