/**
 * The log buffer (state/logs.ts): bounded by lines and bytes, searched by level, job, source, text
 * and cursor, followed by subscribers, and able to charge a quick prompt's lines to it afterwards.
 */
import { describe, expect, it } from 'vitest';
import { LogStore, type LogRecord } from '../../src/state/logs.js';

const rec = (message: string, over: Partial<LogRecord> = {}): LogRecord => ({ ts: 1000, level: 'info', source: 'comfyui', instance: 'comfyui', message, job_id: null, ...over });

function store(lines = 100, bytes = 1024 * 1024) {
  const s = new LogStore(lines, bytes);
  const texts = (q: Parameters<LogStore['query']>[0]) => s.query(q).map((e) => e.value.message);
  return { s, texts };
}

describe('appending', () => {
  it('gives each record the next sequence number', () => {
    const { s } = store();
    expect([s.append(rec('a')), s.append(rec('b')), s.append(rec('c'))]).toEqual([1, 2, 3]);
  });

  it('counts every line accepted by source and level, including those later dropped', () => {
    const { s } = store(2);
    for (const l of ['a', 'b', 'c']) s.append(rec(l));
    s.append(rec('d', { source: 'podscope', level: 'warn' }));
    expect(s.counts.get('comfyui\u0000info')).toBe(3);
    expect(s.counts.get('podscope\u0000warn')).toBe(1);
    expect(s.ring.size).toBe(2);
  });

  it('drops the oldest record when full by lines, and counts the drop', () => {
    const { s, texts } = store(3);
    for (const l of ['a', 'b', 'c', 'd', 'e']) s.append(rec(l));
    expect(texts({ lines: 10 })).toEqual(['c', 'd', 'e']);
    expect(s.ring.dropped).toBe(2);
  });

  it('drops the oldest records when full by bytes, whatever the line count', () => {
    // Each record is charged its text at two bytes a character plus 64.
    const { s, texts } = store(1000, 3 * (100 * 2 + 64));
    for (let i = 0; i < 5; i++) s.append(rec(String(i).repeat(100)));
    expect(texts({ lines: 10 }).map((m) => m[0])).toEqual(['2', '3', '4']);
  });
});

describe('querying', () => {
  function filled() {
    const t = store();
    t.s.append(rec('loading model', { level: 'info' }));
    t.s.append(rec('deprecated call', { level: 'warn', job_id: 'j1' }));
    t.s.append(rec('CUDA out of memory', { level: 'error', job_id: 'j1' }));
    t.s.append(rec('GPU sampling failed', { level: 'warn', source: 'podscope' }));
    t.s.append(rec('Prompt executed', { level: 'info', job_id: 'j2' }));
    return t;
  }

  it('answers the newest lines, oldest first', () => {
    expect(filled().texts({ lines: 2 })).toEqual(['GPU sampling failed', 'Prompt executed']);
  });

  it('keeps a level and every more severe one', () => {
    expect(filled().texts({ lines: 10, level: 'warn' })).toEqual(['deprecated call', 'CUDA out of memory', 'GPU sampling failed']);
  });

  it('keeps the lines of the named jobs, never unattributed ones', () => {
    expect(filled().texts({ lines: 10, jobIds: new Set(['j1', 'j2']) })).toEqual(['deprecated call', 'CUDA out of memory', 'Prompt executed']);
  });

  it('keeps one source', () => {
    expect(filled().texts({ lines: 10, source: 'podscope' })).toEqual(['GPU sampling failed']);
  });

  it('finds text regardless of case', () => {
    expect(filled().texts({ lines: 10, q: 'cuda OUT' })).toEqual(['CUDA out of memory']);
  });

  it('answers only lines after a cursor', () => {
    expect(filled().texts({ lines: 10, after: 3 })).toEqual(['GPU sampling failed', 'Prompt executed']);
  });

  it('combines filters', () => {
    expect(filled().texts({ lines: 10, level: 'error', jobIds: new Set(['j1']), q: 'memory' })).toEqual(['CUDA out of memory']);
  });

  it('answers nothing for a cursor past the newest line', () => {
    expect(filled().texts({ lines: 10, after: 99 })).toEqual([]);
  });
});

describe('following', () => {
  it('hands each new record to every subscriber with its sequence number', () => {
    const { s } = store();
    const a: number[] = [];
    const b: string[] = [];
    s.subscribe((e) => a.push(e.seq));
    s.subscribe((e) => b.push(e.value.message));
    s.append(rec('x'));
    s.append(rec('y'));
    expect(a).toEqual([1, 2]);
    expect(b).toEqual(['x', 'y']);
    expect(s.subscriberCount).toBe(2);
  });

  it('stops handing records to a subscriber that left', () => {
    const { s } = store();
    const seen: string[] = [];
    const off = s.subscribe((e) => seen.push(e.value.message));
    s.append(rec('x'));
    off();
    s.append(rec('y'));
    expect(seen).toEqual(['x']);
    expect(s.subscriberCount).toBe(0);
  });
});

describe('charging a quick prompt its lines afterwards', () => {
  it('charges ComfyUI’s unattributed lines inside the window, and counts them', () => {
    const { s } = store();
    s.append(rec('before', { ts: 900 }));
    s.append(rec('inside 1', { ts: 1000 }));
    s.append(rec('inside 2', { ts: 1500 }));
    s.append(rec('after', { ts: 2500 }));
    expect(s.attribute('quick', 'comfyui', 1000, 2000)).toBe(2);
    expect(s.query({ lines: 10, jobIds: new Set(['quick']) }).map((e) => e.value.message)).toEqual(['inside 1', 'inside 2']);
  });

  it('leaves lines already charged to a job, and podscope’s own lines, as they are', () => {
    const { s } = store();
    s.append(rec('other job', { ts: 1100, job_id: 'j0' }));
    s.append(rec('podscope', { ts: 1200, source: 'podscope' }));
    expect(s.attribute('quick', 'comfyui', 1000, 2000)).toBe(0);
    expect(s.query({ lines: 10 }).map((e) => e.value.job_id)).toEqual(['j0', null]);
  });
});

describe('a job id learned after its lines were charged under the prompt id', () => {
  it('moves the instance’s lines from the prompt id to the job id, from `since` on', () => {
    const { s } = store();
    s.append(rec('earlier run of the same prompt id', { ts: 500, job_id: 'p-1' }));
    s.append(rec('node ran', { ts: 1000, job_id: 'p-1' }));
    s.append(rec('other instance', { ts: 1100, job_id: 'p-1', instance: 'right' }));
    s.append(rec('another prompt', { ts: 1200, job_id: 'p-2' }));
    expect(s.rename('comfyui', 'p-1', 'job-7', 900)).toBe(1);
    expect(s.query({ lines: 10 }).map((e) => `${e.value.message}: ${e.value.job_id}`)).toEqual(['earlier run of the same prompt id: p-1', 'node ran: job-7', 'other instance: p-1', 'another prompt: p-2']);
  });
});
