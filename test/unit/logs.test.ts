import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectLevel, importFailure, isOomText, LineAssembler, parseTqdm, RecordGrouper, stripAnsi, stripManagerPrefix } from '../../src/comfy-log/normalize.js';
import { LogCollector } from '../../src/collectors/logs.js';
import { LogStore } from '../../src/state/logs.js';
import { ComfyState } from '../../src/state/comfy.js';
import { HealthBoard } from '../../src/state/health.js';
import { decodeQueueItem as parseQueueItem } from '../../src/sources/comfy-events.js';
import { Scrubber } from '../../src/secrets.js';

const fx = (name: string) => readFileSync(new URL(`../fixtures/comfyui-logs/${name}`, import.meta.url), 'utf8');

function rig(opts: { secrets?: string[]; lines?: number; bytes?: number } = {}) {
  const store = new LogStore(opts.lines ?? 1000, opts.bytes ?? 8 * 1024 * 1024);
  const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
  const health = new HealthBoard();
  const collector = new LogCollector({ logFile: undefined, store, comfy, health, scrubber: new Scrubber(opts.secrets ?? []) });
  const feed = (text: string) => collector.ingestComfy(text.split(/(?<=\n)/).map((m, i) => ({ t: `t${Math.random()}${i}`, m })));
  // A live ComfyUI (HTTP answers, websocket open): lines are charged to the job it runs.
  comfy.httpAnswered(Date.now());
  comfy.connected('podscope-test');
  const run = (jobId: string) => comfy.tracker.applyQueue(Date.now(), [parseQueueItem([1, `p-${jobId}`, { '3': { class_type: 'KSampler', inputs: {} } }, { job_id: jobId }, ['3']])!], []);
  const messages = () => store.ring.toArray().map((e) => e.value);
  return { store, comfy, health, collector, feed, run, messages };
}

describe('normalising lines', () => {
  it('strips ANSI colour codes', () => {
    expect(stripAnsi('\x1b[32mPrompt executed in 1.00 seconds\x1b[0m')).toBe('Prompt executed in 1.00 seconds');
  });

  it("reads ComfyUI-Manager's file prefix as the time", () => {
    const r = stripManagerPrefix('[2026-11-22 09:14:09.455] got prompt');
    expect(r.text).toBe('got prompt');
    expect(new Date(r.ts!).getMinutes()).toBe(14);
  });

  it.each([
    ['!!! Exception during processing !!! Allocation on device ', 'error'],
    ['Traceback (most recent call last):\n  File "x"', 'error'],
    ['torch.OutOfMemoryError: Allocation on device ', 'error'],
    ['Got an OOM, unloading all loaded models.', 'error'],
    ['   0.0 seconds (IMPORT FAILED): /comfyui/custom_nodes/X', 'error'],
    ['UserWarning: TypedStorage is deprecated', 'warn'],
    ['[WARNING] something odd', 'warn'],
    ['[DEBUG] details', 'debug'],
    ['got prompt', 'info'],
  ])('gives %j the level %s', (text, level) => {
    expect(detectLevel(text).level).toBe(level);
  });

  it('reads tqdm steps', () => {
    expect(parseTqdm(' 50%|█████     | 2/4 [00:01<00:01,  1.95it/s]')).toEqual({ value: 2, total: 4 });
    expect(parseTqdm('100%|██████████| 20/20 [00:48<00:00, 24.02s/it]')).toEqual({ value: 20, total: 20 });
    expect(parseTqdm('got prompt')).toBeNull();
  });

  it('recognises both OOM texts', () => {
    expect(isOomText(fx('oom-async.txt'))).toBe(true);
    expect(isOomText(fx('oom-native.txt'))).toBe(true);
  });

  it('names a custom node that failed to import', () => {
    expect(importFailure('   0.0 seconds (IMPORT FAILED): /comfyui/custom_nodes/ComfyUI-Broken')).toBe('/comfyui/custom_nodes/ComfyUI-Broken');
  });

  it('collapses carriage-return redraws to the latest state of the bar', () => {
    const a = new LineAssembler(1000);
    expect(a.push(fx('prompt.txt')).filter((l) => l.includes('%|'))).toEqual(['100%|██████████| 4/4 [00:02<00:00,  1.96it/s]']);
  });

  it('cuts a 1 MiB line with a marker instead of rejecting it', () => {
    const a = new LineAssembler(16 * 1024);
    const [line] = a.push(`${'x'.repeat(1024 * 1024)}\n`);
    expect(line!.length).toBeLessThan(17 * 1024);
    expect(line).toMatch(/… \[truncated 1032192 characters\]$/);
  });

  it('keeps a traceback as one record', () => {
    const g = new RecordGrouper();
    const out = fx('oom-async.txt').split('\n').flatMap((l) => g.push(l));
    const tb = out.find((r) => r.startsWith('Traceback'))!;
    expect(tb.split('\n')).toHaveLength(6);
    expect(tb.endsWith('torch.OutOfMemoryError: Allocation on device ')).toBe(true);
    expect(out).toContain('Got an OOM, unloading all loaded models.');
  });
});

describe('the log collector', () => {
  it('stores a prompt\'s lines with levels, one bar line, and the job while it runs', () => {
    const r = rig();
    r.run('job_1');
    r.feed(fx('prompt.txt'));
    const msgs = r.messages();
    expect(msgs.map((m) => m.message)).toContain('100%|██████████| 4/4 [00:02<00:00,  1.96it/s]');
    expect(msgs.filter((m) => m.message.includes('%|'))).toHaveLength(1);
    // `got prompt` is printed when a prompt is POSTed: the new prompt's, not the running job's.
    expect(msgs.filter((m) => m.message !== 'got prompt').every((m) => m.job_id === 'job_1' && m.source === 'comfyui')).toBe(true);
    expect(msgs.filter((m) => m.message === 'got prompt').map((m) => m.job_id)).toEqual([null]);
  });

  it("charges a running job one `Prompt executed in` line: what follows it is the next prompt's, not its own", () => {
    const r = rig();
    r.run('job_1');
    r.feed('Prompt executed in 1.61 seconds\nPrompt executed in 0.00 seconds\n');
    expect(r.messages().map((m) => [m.message, m.job_id])).toEqual([
      ['Prompt executed in 1.61 seconds', 'job_1'],
      ['Prompt executed in 0.00 seconds', null],
    ]);
  });

  it('keeps the traceback of an OOM whole, at error, and attaches the OOM to the running job', () => {
    const r = rig();
    r.run('job_oom');
    r.feed(fx('oom-async.txt'));
    const errors = r.messages().filter((m) => m.level === 'error');
    expect(errors.map((m) => m.message.split('\n')[0])).toEqual([
      '!!! Exception during processing !!! Allocation on device ',
      'Traceback (most recent call last):',
      'Got an OOM, unloading all loaded models.',
    ]);
    expect(r.comfy.tracker.get('job_oom')!.error).toMatchObject({ oom: true });
  });

  it('scrubs planted secrets before storing a line', () => {
    const r = rig({ secrets: ['hf_SuperSecretTokenValue'] });
    r.feed('downloading with token hf_SuperSecretTokenValue\nAuthorization: Bearer abcdef123456789\n');
    const text = r.messages().map((m) => m.message).join('\n');
    expect(text).not.toContain('hf_SuperSecretTokenValue');
    expect(text).not.toContain('abcdef123456789');
    expect(text).toContain('[REDACTED]');
  });

  it('records a rejected prompt and lists it as a problem', () => {
    const r = rig();
    r.feed(fx('validation.txt'));
    expect(r.comfy.rejections).toHaveLength(1);
    expect(r.comfy.rejections[0]!.lines[0]).toBe('Failed to validate prompt for output 9:');
    expect(r.health.problems().map((p) => p.code)).toContain('PROMPT_REJECTED');
  });

  it('turns IMPORT FAILED into a problem naming the node', () => {
    const r = rig();
    r.feed(fx('startup.txt'));
    const p = r.health.problems().find((x) => x.code === 'CUSTOM_NODE_IMPORT_FAILED')!;
    expect(p.message).toContain('/comfyui/custom_nodes/ComfyUI-Broken');
  });

  it('takes the backlog without duplicating what the stream already gave', () => {
    const r = rig();
    const entries = [
      { t: '2026-11-22T09:00:00.000001', m: 'one\n' },
      { t: '2026-11-22T09:00:00.000002', m: 'two\n' },
    ];
    r.collector.ingestComfy(entries);
    r.collector.ingestComfy([...entries, { t: '2026-11-22T09:00:00.000003', m: 'three\n' }]);
    expect(r.messages().map((m) => m.message)).toEqual(['one', 'two', 'three']);
  });

  it('keeps podscope\'s own records with their level', () => {
    const r = rig();
    r.collector.podscopeSink().write(`${JSON.stringify({ level: 'warn', timestamp: '2026-11-22T09:00:00.000Z', message: 'GPU sampling failed', job_id: 'j' })}\n`);
    expect(r.messages()).toEqual([{ ts: Date.parse('2026-11-22T09:00:00.000Z'), level: 'warn', source: 'podscope', instance: null, message: 'GPU sampling failed', job_id: 'j' }]);
  });
});

describe('the buffer under a burst', () => {
  it('loses none of 100,000 lines below capacity', () => {
    const r = rig({ lines: 100_000, bytes: 64 * 1024 * 1024 });
    const chunk = Array.from({ length: 100_000 }, (_, i) => `line ${i}\n`).join('');
    r.collector.ingestComfy([{ t: 'a', m: chunk }]);
    expect(r.store.ring.size).toBe(100_000);
    expect(r.store.ring.dropped).toBe(0);
    expect(r.store.ring.last()!.value.message).toBe('line 99999');
  });

  it('counts exactly what it dropped above capacity', () => {
    const r = rig({ lines: 30_000 });
    const chunk = Array.from({ length: 100_000 }, (_, i) => `line ${i}\n`).join('');
    r.collector.ingestComfy([{ t: 'a', m: chunk }]);
    expect(r.store.ring.size).toBe(30_000);
    expect(r.store.ring.dropped).toBe(70_000);
    expect(r.store.ring.toArray()[0]!.value.message).toBe('line 70000');
  });
});

describe('an unfinished bar followed by another write', () => {
  it('keeps the bar and the next line apart', () => {
    const r = rig();
    r.collector.ingestComfy([
      { t: '1', m: '\r 25%|██▌       | 1/4 [00:00<00:01,  1.95it/s]' },
      { t: '2', m: '!!! Exception during processing !!! boom\n' },
    ]);
    expect(r.messages().map((m) => m.message)).toEqual([' 25%|██▌       | 1/4 [00:00<00:01,  1.95it/s]', '!!! Exception during processing !!! boom']);
  });
});
