import { describe, expect, it } from 'vitest';
import { LogStore, type LogRecord } from '../../src/state/logs.js';
import { LOOPBACK, json, testPod } from '../helpers/pod.js';

function pod(env: Record<string, string> = {}) {
  const store = new LogStore(1000, 8 * 1024 * 1024);
  const p = testPod({ PODSCOPE_LOG_LINES: '1000', ...env }, undefined, { parts: { logs: store } });
  const add = (r: Partial<LogRecord>) => store.append({ ts: Date.UTC(2026, 10, 22, 9), level: 'info', source: 'comfyui', instance: '8188', message: 'x', job_id: null, ...r });
  const get = (q: string) => p.app.request(`/debug/logs${q}`, {}, LOOPBACK);
  return { ...p, store, add, get };
}

describe('/debug/logs', () => {
  it('answers the newest lines, oldest first, with buffered and dropped', async () => {
    const p = pod();
    for (let i = 1; i <= 5; i++) p.add({ message: `m${i}` });
    const body = await json(await p.get('?lines=2'));
    expect(body.lines.map((l: { message: string }) => l.message)).toEqual(['m4', 'm5']);
    expect(body.lines[0]).toEqual({ seq: 4, ts: '2026-11-22T09:00:00.000Z', level: 'info', source: 'comfyui', instance: '8188', message: 'm4', job_id: null });
    expect(body.buffered).toBe(5);
    expect(body.dropped).toBe(0);
  });

  it('filters by level, job, source, text and cursor', async () => {
    const p = pod();
    p.add({ level: 'error', message: 'Traceback (most recent call last):\n  File "x"\nValueError: bad', job_id: 'J' });
    p.add({ level: 'info', message: 'step', job_id: 'J' });
    p.add({ level: 'error', message: 'other job failed', job_id: 'K' });
    p.add({ level: 'warn', message: 'podscope warning', source: 'podscope' });
    const msgs = async (q: string) => (await json(await p.get(q))).lines.map((l: { message: string }) => l.message);
    expect(await msgs('?level=error&job_id=J')).toEqual(['Traceback (most recent call last):\n  File "x"\nValueError: bad']);
    expect(await msgs('?source=podscope')).toEqual(['podscope warning']);
    expect(await msgs('?level=warn')).toHaveLength(3);
    expect(await msgs('?q=VALUEERROR')).toHaveLength(1);
    expect(await msgs('?after=2')).toEqual(['other job failed', 'podscope warning']);
  });

  it('answers plain lines for grep with format=text', async () => {
    const p = pod();
    p.add({ level: 'warn', message: 'hello', job_id: 'J' });
    const res = await p.get('?format=text');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('2026-11-22T09:00:00.000Z WARN  comfyui[8188] J hello\n');
  });

  it.each([
    ['lines=0', 'lines'],
    ['lines=1001', 'lines'],
    ['lines=ten', 'lines'],
    ['lines=-5', 'lines'],
    ['level=loud', 'level'],
    ['source=kernel', 'source'],
    ['after=-1', 'after'],
    ['after=abc', 'after'],
    ['q=', 'q'],
    [`q=${'a'.repeat(201)}`, 'q'],
    ['format=xml', 'format'],
    ['follow=yes', 'follow'],
    ['job_id=', 'job_id'],
    ['job_id=has%20space', 'job_id'],
  ])('answers 400 naming the parameter for %s', async (query, parameter) => {
    const res = await pod().get(`?${query}`);
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error.code).toBe('INVALID_PARAMETER');
    expect(body.error.details.parameter).toBe(parameter);
    expect(body.error.message).toMatch(new RegExp(`^${parameter} `));
  });

  it.each(['lines=0', 'lines=99999999999999999999999', 'lines=1.5', 'lines=1e3'])('states the allowed range of lines in its own words for %s', async (query) => {
    const body = await json(await pod().get(`?${query}`));
    expect(body.error.message).toBe('lines must be an integer from 1 to 1000.');
  });

  it('streams new lines with follow=1 and heartbeats while idle', async () => {
    const p = pod({ PODSCOPE_FOLLOW_HEARTBEAT_MS: '100' });
    p.add({ message: 'before' });
    const res = await p.get('?follow=1&lines=5');
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let got = '';
    const readUntil = async (needle: string) => {
      while (!got.includes(needle)) got += decoder.decode((await reader.read()).value);
    };
    await readUntil('"message":"before"');
    p.add({ message: 'live line' });
    await readUntil('"message":"live line"');
    await readUntil(': heartbeat');
    expect(p.store.subscriberCount).toBe(1);
    await reader.cancel();
    expect(p.store.subscriberCount).toBe(0);
  });

  it('drops a reader that does not keep up, rather than buffering without bound', async () => {
    const p = pod();
    const res = await p.get('?follow=1&format=text');
    const reader = res.body!.getReader();
    const big = 'y'.repeat(8000);
    for (let i = 0; i < 400; i++) p.add({ message: big }); // ~3 MB, never read
    expect(p.store.subscriberCount).toBe(0);
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.endsWith('# podscope: dropped, reader too slow\n')).toBe(true);
  });

  it('ends follow streams when podscope stops', async () => {
    const p = pod();
    const res = await p.get('?follow=1');
    const reader = res.body!.getReader();
    p.endStreams();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain('event: end');
  });
});
