/**
 * podscope's stdout (log.ts `bufferedStdout`): lines gathered for a moment and written together,
 * encoded as UTF-8 on the way in, and never lost or cut when they do not fit.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bufferedStdout } from '../../src/log.js';

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
});
