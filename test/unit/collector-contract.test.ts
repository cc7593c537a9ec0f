/**
 * The collector contract's helpers (collectors/collector.ts): a unit of work is timed and recorded
 * on the health board and never throws; a sleep ends early when podscope stops.
 */
import { describe, expect, it } from 'vitest';
import { sleep, tracked } from '../../src/collectors/collector.js';
import { HealthBoard } from '../../src/state/health.js';

describe('tracked', () => {
  it('records a success with its duration and answers true', async () => {
    const health = new HealthBoard();
    expect(await tracked(health, 'gpu', async () => ({ ok: true }))).toBe(true);
    expect(health.get('gpu')).toMatchObject({ ok: true, runs: 1 });
    expect(health.get('gpu')!.last_duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('records a failure with its code and message and answers false', async () => {
    const health = new HealthBoard();
    expect(await tracked(health, 'gpu', async () => ({ ok: false, code: 'GPU_TIMEOUT', message: 'no answer' }))).toBe(false);
    expect(health.get('gpu')).toMatchObject({ ok: false, last_error: { code: 'GPU_TIMEOUT', message: 'no answer' } });
  });

  it('records a thrown error as an EXCEPTION failure instead of throwing', async () => {
    const health = new HealthBoard();
    await expect(
      tracked(health, 'gpu', async () => {
        throw new Error('parser bug');
      }),
    ).resolves.toBe(false);
    expect(health.get('gpu')!.last_error).toMatchObject({ code: 'EXCEPTION', message: 'parser bug' });
  });

  it('records a thrown value that is not an Error by its text', async () => {
    const health = new HealthBoard();
    await tracked(health, 'gpu', async () => {
      throw 'a string';
    });
    expect(health.get('gpu')!.last_error).toMatchObject({ code: 'EXCEPTION', message: 'a string' });
  });

  it('records nothing for work cut short by stopping', async () => {
    const health = new HealthBoard();
    expect(await tracked(health, 'gpu', async () => ({ stopped: true }))).toBe(false);
    expect(health.get('gpu')).toBeUndefined();
  });

  it('times the work it ran', async () => {
    const health = new HealthBoard();
    await tracked(health, 'slow', () => new Promise((r) => setTimeout(() => r({ ok: true }), 30)));
    // A timer may fire early by a millisecond; the record is at least most of the wait.
    expect(health.get('slow')!.last_duration_ms).toBeGreaterThanOrEqual(25);
  });
});

describe('sleep', () => {
  it('ends after the time given', async () => {
    const t0 = performance.now();
    await sleep(30);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('ends at once when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const t0 = performance.now();
    await sleep(60_000, ac.signal);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('ends early when the signal aborts during the wait', async () => {
    const ac = new AbortController();
    const done = sleep(60_000, ac.signal).then(() => 'woke');
    ac.abort();
    await expect(done).resolves.toBe('woke');
  });

  it('treats a negative time as none', async () => {
    await expect(sleep(-5)).resolves.toBeUndefined();
  });

  it('leaves no listener on the signal once it has ended', async () => {
    const ac = new AbortController();
    let added = 0;
    let removed = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
    ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
    for (let i = 0; i < 5; i++) await sleep(1, ac.signal);
    expect(added).toBe(5);
    expect(removed).toBe(5);
  });
});
