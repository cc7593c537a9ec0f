/**
 * The event journal behind /debug/events (state/events.ts): numbered events, a bounded replay
 * buffer, and what a client resuming with Last-Event-ID is owed, or told it has lost.
 */
import { describe, expect, it } from 'vitest';
import { EventJournal } from '../../src/state/events.js';

const T0 = Date.parse('2026-11-24T00:00:00Z');

function journal(capacity = 100) {
  const j = new EventJournal(capacity, 8 * 1024 * 1024, () => T0);
  return j;
}

/** The data of an SSE frame. */
const data = (frame: string) => JSON.parse(/^data: (.*)$/m.exec(frame)![1]!);

describe('recording', () => {
  it('numbers events from 1 under an id that names this boot', () => {
    const j = journal();
    j.record('problem_started', { code: 'A' });
    j.record('problem_ended', { code: 'A' });
    expect(j.ring.toArray().map((e) => j.id(e.seq))).toEqual([`${j.boot}-1`, `${j.boot}-2`]);
    expect(j.boot).toMatch(/^[0-9a-f]{8}$/);
  });

  it('makes each event’s SSE frame once: id, event type, and the data with its type and time', () => {
    const j = journal();
    j.record('job_started', { started_at: '2026-11-24T00:00:00.000Z' }, { job_id: 'job-1', prompt_id: 'P1' });
    const { frame } = j.ring.last()!.value;
    expect(frame.startsWith(`id: ${j.boot}-1\nevent: job_started\ndata: `)).toBe(true);
    expect(frame.endsWith('\n\n')).toBe(true);
    expect(data(frame)).toEqual({ type: 'job_started', at: '2026-11-24T00:00:00.000Z', job_id: 'job-1', prompt_id: 'P1', started_at: '2026-11-24T00:00:00.000Z' });
  });

  it('leaves the job ids out of an event about no job', () => {
    const j = journal();
    j.record('gpu', { gpus: [] });
    expect(data(j.ring.last()!.value.frame)).toEqual({ type: 'gpu', at: '2026-11-24T00:00:00.000Z', gpus: [] });
  });

  it('keeps a data field that would break a line inside the JSON', () => {
    const j = journal();
    j.record('problem_started', { message: 'line one\nline two\r\n' });
    const frame = j.ring.last()!.value.frame;
    expect(frame.split('\n').filter((l) => l.startsWith('data: '))).toHaveLength(1);
    expect(data(frame).message).toBe('line one\nline two\r\n');
  });

  it('counts events by type', () => {
    const j = journal();
    j.record('gpu', {});
    j.record('gpu', {});
    j.record('rejection', {});
    expect(Object.fromEntries(j.counts)).toEqual({ gpu: 2, rejection: 1 });
  });

  it('hands each event to every subscriber, and none after it leaves', () => {
    const j = journal();
    const a: number[] = [];
    const off = j.subscribe((e) => a.push(e.seq));
    j.subscribe(() => {
      throw new Error('a subscriber bug');
    });
    j.record('gpu', {});
    off();
    j.record('gpu', {});
    expect(a).toEqual([1]);
    expect(j.subscriberCount).toBe(1);
  });

  it('keeps the newest events up to its capacity', () => {
    const j = journal(100);
    for (let i = 0; i < 250; i++) j.record('gpu', { i });
    expect(j.ring.size).toBe(100);
    expect(j.ring.firstSeq).toBe(151);
  });
});

describe('resuming', () => {
  function filled(n: number, capacity = 100) {
    const j = journal(capacity);
    for (let i = 0; i < n; i++) j.record('gpu', { i });
    return j;
  }

  it('owes a client without Last-Event-ID nothing from before', () => {
    expect(filled(5).resume(undefined)).toEqual({ kind: 'fresh' });
    expect(filled(5).resume('')).toEqual({ kind: 'fresh' });
  });

  it('owes a client every event after the one it saw', () => {
    const j = filled(5);
    const r = j.resume(`${j.boot}-3`);
    expect(r.kind).toBe('replay');
    expect(r.kind === 'replay' && r.entries.map((e) => e.seq)).toEqual([4, 5]);
  });

  it('owes a client that saw the newest event nothing', () => {
    const j = filled(5);
    expect(j.resume(`${j.boot}-5`)).toEqual({ kind: 'replay', entries: [] });
  });

  it('tells a client how many events it lost when they left the buffer, and replays the rest', () => {
    const j = filled(250, 100);
    const r = j.resume(`${j.boot}-120`);
    expect(r.kind).toBe('gap');
    if (r.kind !== 'gap') return;
    expect(r.lost).toBe(30);
    expect(r.reason).toBe(`30 events after ${j.boot}-120 are no longer held (the replay buffer keeps 100)`);
    expect(r.entries[0]!.seq).toBe(151);
  });

  it('replays without a gap when the next event is the oldest still held', () => {
    const j = filled(250, 100);
    expect(j.resume(`${j.boot}-150`).kind).toBe('replay');
  });

  it('tells a client that resumes across a restart that what happened in between is lost', () => {
    const j = filled(3);
    const r = j.resume('0badc0de-2');
    expect(r).toMatchObject({ kind: 'gap', lost: null, reason: 'podscope restarted since that event; what happened in between is lost; replaying every event still held' });
    expect(r.kind === 'gap' && r.entries).toHaveLength(3);
  });

  it('tells a client whose id was never sent, or is not an id, and replays what is held', () => {
    const j = filled(3);
    expect(j.resume(`${j.boot}-99`)).toMatchObject({ kind: 'gap', reason: `event ${j.boot}-99 was never sent; replaying every event still held` });
    expect(j.resume('yesterday')).toMatchObject({ kind: 'gap', reason: 'Last-Event-ID "yesterday" is not an id podscope gave; replaying every event still held' });
  });
});
