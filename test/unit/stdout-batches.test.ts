/**
 * podscope's stdout (logger.ts `bufferedStdout`): lines gathered for a moment and written together,
 * encoded as UTF-8 on the way in, and never lost or cut when they do not fit; when stdout's reader
 * stops taking them, at most 1 MiB waits and the lines after it are dropped, counted and reported.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PENDING_BYTES, bufferedStdout, type StallListener } from '../../src/logger.js';

/** A sink whose writes are recorded as text, one entry per system call it would make. */
function recorded() {
  const writes: string[] = [];
  const sink = bufferedStdout((bytes, done) => {
    writes.push(Buffer.from(bytes).toString('utf8'));
    done();
  });
  return { sink, writes };
}

describe('bufferedStdout', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('writes the lines of the next 25 ms in one write, in order', () => {
    const { sink, writes } = recorded();
    sink.write('a\n');
    sink.write('b\n');
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(25);
    expect(writes).toEqual(['a\nb\n']);
  });

  it('keeps non-ASCII text whole', () => {
    const { sink, writes } = recorded();
    sink.write('{"path":"/café/画像 ✓"}\n');
    vi.advanceTimersByTime(25);
    expect(writes).toEqual(['{"path":"/café/画像 ✓"}\n']);
  });

  it('writes at once, without waiting, when the next line might not fit in 64 KiB', () => {
    const { sink, writes } = recorded();
    const line = `${'x'.repeat(999)}\n`;
    for (let i = 0; i < 70; i++) sink.write(line);
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(64 * 1024);
    vi.advanceTimersByTime(25);
    expect(writes.join('')).toBe(line.repeat(70));
  });

  it('writes a line longer than a batch on its own, after what came before it', () => {
    const { sink, writes } = recorded();
    const long = `${'é'.repeat(40_000)}\n`;
    sink.write('before\n');
    sink.write(long);
    sink.write('after\n');
    vi.advanceTimersByTime(25);
    expect(writes).toEqual(['before\n', long, 'after\n']);
  });

  it('fills a written batch again only once its write has ended', () => {
    const inFlight: Array<{ bytes: Uint8Array; text: string; done: () => void }> = [];
    const sink = bufferedStdout((bytes, done) => inFlight.push({ bytes, text: Buffer.from(bytes).toString('utf8'), done }));
    sink.write('first\n');
    vi.advanceTimersByTime(25);
    sink.write('second\n');
    vi.advanceTimersByTime(25);
    // Neither write has ended: the second line went into a batch of its own.
    expect(inFlight.map((w) => w.text)).toEqual(['first\n', 'second\n']);
    inFlight[0]!.done();
    for (const line of ['third\n', 'fourth\n']) {
      sink.write(line);
      vi.advanceTimersByTime(25);
    }
    expect(inFlight.map((w) => w.text)).toEqual(['first\n', 'second\n', 'third\n', 'fourth\n']);
    // The batch whose write ended was filled again; the ones still in flight kept their bytes.
    expect(inFlight[3]!.bytes.buffer).toBe(inFlight[0]!.bytes.buffer);
    expect(inFlight.slice(1, 3).map((w) => Buffer.from(w.bytes).toString('utf8'))).toEqual(['second\n', 'third\n']);
  });

  describe('when stdout stops taking lines', () => {
    /** A stdout whose writes end only when the test says so; `taken` is what it has been handed. */
    function stuck(pendingBytes?: number) {
      const inFlight: Array<{ text: string; done: () => void }> = [];
      const sink = bufferedStdout((bytes, done) => inFlight.push({ text: Buffer.from(bytes).toString('utf8'), done }), pendingBytes);
      const told: string[] = [];
      const listener: StallListener = { stalled: () => told.push('stalled'), resumed: (n) => told.push(`resumed ${n}`) };
      sink.watch(listener);
      const endWrites = () => {
        for (const w of inFlight.splice(0)) w.done();
      };
      return { sink, inFlight, told, endWrites, taken: () => inFlight.map((w) => w.text).join('') };
    }
    const line = (i: number) => `${String(i).padStart(6, '0')} ${'x'.repeat(992)}\n`;

    it('hands it at most 1 MiB and drops the lines after the batch it holds, counting them', () => {
      const { sink, taken } = stuck();
      for (let i = 0; i < 4000; i++) sink.write(line(i));
      vi.advanceTimersByTime(25);
      const handed = taken();
      expect(Buffer.byteLength(handed)).toBeLessThanOrEqual(PENDING_BYTES);
      // What went out is the first lines, whole and in order.
      const count = handed.length / 1000;
      expect(handed).toBe(Array.from({ length: count }, (_, i) => line(i)).join(''));
      // Those, one batch held back, and the dropped ones are every line.
      expect(sink.dropped).toBeGreaterThan(2000);
      const held = 4000 - count - sink.dropped;
      expect(held).toBeGreaterThan(0);
      expect(held * 1000).toBeLessThanOrEqual(64 * 1024);
    });

    it('tells its listener once that it has started dropping, after the write that dropped', async () => {
      const { sink, told } = stuck();
      for (let i = 0; i < 2000; i++) sink.write(line(i));
      expect(told).toEqual([]);
      await Promise.resolve();
      expect(told).toEqual(['stalled']);
    });

    it('writes the held batch once stdout takes lines again, then says how many were dropped', async () => {
      const { sink, told, endWrites, inFlight, taken } = stuck();
      for (let i = 0; i < 2000; i++) sink.write(line(i));
      await Promise.resolve();
      const before = taken();
      const dropped = sink.dropped;
      endWrites();
      expect(told).toEqual(['stalled', `resumed ${dropped}`]);
      sink.write('after\n');
      vi.advanceTimersByTime(25);
      const lines = inFlight.map((w) => w.text).join('').split('\n').slice(0, -1);
      // The held lines follow the ones written before, with no line cut; then the new line.
      const held = lines.slice(0, -1).map((l) => Number(l.slice(0, 6)));
      expect(held[0]).toBe(before.length / 1000);
      expect(held).toEqual(held.map((_, i) => held[0]! + i));
      expect(lines.at(-1)).toBe('after');
      expect(sink.dropped).toBe(dropped);
    });

    it('drops a line longer than a batch too, rather than queue it', () => {
      const { sink, taken } = stuck(100 * 1024);
      sink.write(`${'y'.repeat(70 * 1024)}\n`);
      sink.write(`${'z'.repeat(70 * 1024)}\n`);
      expect(taken()).toBe(`${'y'.repeat(70 * 1024)}\n`);
      expect(sink.dropped).toBe(1);
    });

    it('writes a batch held back for a moment as soon as a write ends, though no line follows', () => {
      const { sink, inFlight, taken } = stuck(100);
      sink.write(`${'a'.repeat(49)}\n`);
      vi.advanceTimersByTime(25);
      sink.write(`${'b'.repeat(59)}\n`);
      vi.advanceTimersByTime(100);
      // 50 + 60 bytes would be over 100: the second line waits, and is not dropped.
      expect(taken()).toBe(`${'a'.repeat(49)}\n`);
      inFlight[0]!.done();
      vi.advanceTimersByTime(25);
      expect(inFlight.map((w) => w.text)).toEqual([`${'a'.repeat(49)}\n`, `${'b'.repeat(59)}\n`]);
      expect(sink.dropped).toBe(0);
    });
  });
});
