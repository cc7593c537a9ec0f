import { describe, expect, it } from 'vitest';
import { RingBuffer } from '../../src/state/ring-buffer.js';

const bytes = (s: string) => s.length;

describe('ring buffer', () => {
  it('keeps at most maxEntries, evicting the oldest', () => {
    const r = new RingBuffer<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect(r.toArray().map((e) => e.value)).toEqual([3, 4, 5]);
    expect(r.size).toBe(3);
    expect(r.dropped).toBe(2);
  });

  it('keeps at most maxBytes, evicting as many old entries as needed', () => {
    const r = new RingBuffer<string>(100, 10, bytes);
    r.push('aaaa');
    r.push('bbbb');
    r.push('cccccc');
    expect(r.toArray().map((e) => e.value)).toEqual(['bbbb', 'cccccc']);
    expect(r.bytes).toBe(10);
    expect(r.dropped).toBe(1);
  });

  it('refuses an entry larger than the byte bound and counts it as dropped', () => {
    const r = new RingBuffer<string>(10, 5, bytes);
    r.push('ok');
    expect(r.push('much too long')).toBeUndefined();
    expect(r.toArray().map((e) => e.value)).toEqual(['ok']);
    expect(r.dropped).toBe(1);
  });

  it('gives every entry a seq one above the previous, across evictions', () => {
    const r = new RingBuffer<string>(2);
    expect([r.push('a'), r.push('b'), r.push('c')]).toEqual([1, 2, 3]);
    expect(r.toArray().map((e) => e.seq)).toEqual([2, 3]);
    expect(r.firstSeq).toBe(2);
    expect(r.lastSeq).toBe(3);
  });

  it('reads the newest N, oldest first', () => {
    const r = new RingBuffer<number>(10);
    for (let i = 1; i <= 6; i++) r.push(i);
    expect(r.newest(3).map((e) => e.value)).toEqual([4, 5, 6]);
    expect(r.newest(100).length).toBe(6);
    expect(r.newest(0)).toEqual([]);
  });

  it('reads entries after a seq cursor', () => {
    const r = new RingBuffer<number>(10);
    for (let i = 1; i <= 6; i++) r.push(i * 10);
    expect(r.after(4).map((e) => e.value)).toEqual([50, 60]);
    expect(r.after(6)).toEqual([]);
    expect(r.after(0, 2).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('reads from the oldest kept entry when the cursor points before it', () => {
    const r = new RingBuffer<number>(3);
    for (let i = 1; i <= 10; i++) r.push(i);
    expect(r.after(2).map((e) => e.seq)).toEqual([8, 9, 10]);
  });

  it('wraps around its storage many times and stays consistent', () => {
    const r = new RingBuffer<string>(7, 40, bytes);
    for (let i = 0; i < 1000; i++) r.push(`v${i}`);
    const all = r.toArray();
    expect(all.map((e) => e.value)).toEqual(Array.from({ length: all.length }, (_, k) => `v${1000 - all.length + k}`));
    expect(all.every((e, k) => k === 0 || e.seq === all[k - 1]!.seq + 1)).toBe(true);
    expect(r.bytes).toBe(all.reduce((n, e) => n + e.bytes, 0));
    expect(r.bytes).toBeLessThanOrEqual(40);
  });

  it('selects the newest matching entries after a cursor', () => {
    const r = new RingBuffer<number>(20);
    for (let i = 1; i <= 12; i++) r.push(i);
    expect(r.select((v) => v % 2 === 0, 3).map((e) => e.value)).toEqual([8, 10, 12]);
    expect(r.select((v) => v % 2 === 0, 10, 9).map((e) => e.value)).toEqual([10, 12]);
  });

  it('stores each entry in its own slot', () => {
    const r = new RingBuffer<{ n: number }>(3);
    const a = { n: 1 };
    const b = { n: 2 };
    r.push(a);
    r.push(b);
    const [x, y] = r.toArray();
    expect(x!.value).toBe(a);
    expect(y!.value).toBe(b);
    a.n = 99;
    expect(y!.value.n).toBe(2);
  });

  it('reports its fill', () => {
    const r = new RingBuffer<string>(4, 100, bytes);
    r.push('abc');
    expect(r.stats()).toEqual({ entries: 1, bytes: 3, capacity_entries: 4, capacity_bytes: 100, dropped: 0, next_seq: 2 });
  });
});
