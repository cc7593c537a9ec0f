/** The outputs a job leaves, as ComfyUI's nodes report them in their `ui` dicts, and the bounded ledger of them. */
import { describe, expect, it } from 'vitest';
import { ArtifactLedger, artifactsFromUi } from '../../src/state/artifacts.js';
import type { Job } from '../../src/state/jobs.js';

describe('reading a node’s ui dict', () => {
  it('SaveImage: each image, with its subfolder and type', () => {
    expect(artifactsFromUi({ images: [{ filename: 'ComfyUI_00001_.png', subfolder: 'runs', type: 'output' }] })).toEqual([
      { filename: 'ComfyUI_00001_.png', subfolder: 'runs', type: 'output', kind: 'image', format: null },
    ]);
  });

  it('SaveAnimatedWEBP: images flagged animated', () => {
    expect(artifactsFromUi({ images: [{ filename: 'a.webp', subfolder: '', type: 'output' }], animated: [true] })[0]!.kind).toBe('animated');
  });

  it('VideoHelperSuite gifs: video by its format or extension, else animated', () => {
    const out = artifactsFromUi({
      gifs: [
        { filename: 'clip.mp4', subfolder: '', type: 'output', format: 'video/h264-mp4' },
        { filename: 'clip.webm', subfolder: '', type: 'output' },
        { filename: 'loop.gif', subfolder: '', type: 'output', format: 'image/gif' },
      ],
    });
    expect(out.map((a) => [a.filename, a.kind, a.format])).toEqual([
      ['clip.mp4', 'video', 'video/h264-mp4'],
      ['clip.webm', 'video', null],
      ['loop.gif', 'animated', 'image/gif'],
    ]);
  });

  it('SaveAudio: audio', () => {
    expect(artifactsFromUi({ audio: [{ filename: 'a.flac', subfolder: 'audio', type: 'output' }] })[0]!.kind).toBe('audio');
  });

  it('3D nodes: the result path split into subfolder and file', () => {
    expect(artifactsFromUi({ result: ['mesh/ComfyUI_00001_.glb', null] })).toEqual([{ filename: 'ComfyUI_00001_.glb', subfolder: 'mesh', type: 'output', kind: '3d', format: null }]);
  });

  it('any other list of files, under a bounded name made of its key', () => {
    expect(artifactsFromUi({ 'weird key!': [{ filename: 'x.bin', type: 'output' }] })[0]).toMatchObject({ kind: 'weirdkey', subfolder: '' });
  });

  it('skips entries that are not files (text, numbers, half-made objects)', () => {
    expect(artifactsFromUi({ text: ['hello'], images: [{ filename: 3, type: 'output' }, { filename: 'a.png' }, null], count: 4 })).toEqual([]);
  });
});

function job(promptId: string, outputs: Array<{ node_id: string; cached: boolean; ui: Record<string, unknown> }>): Job {
  return { instance: 'comfyui', job_id: `job-${promptId}`, prompt_id: promptId, outputs } as unknown as Job;
}
const image = (filename: string, type = 'output') => ({ images: [{ filename, subfolder: '', type }] });

describe('the artifacts ledger', () => {
  it('records each output of a finished job, in the order they came', () => {
    const ledger = new ArtifactLedger(10);
    ledger.addJob(job('p1', [{ node_id: '9', cached: false, ui: image('a.png') }]), 1000);
    ledger.addJob(job('p2', [{ node_id: '9', cached: false, ui: image('b.png') }]), 2000);
    expect(ledger.newest(5).map((a) => [a.job_id, a.filename, a.at])).toEqual([
      ['job-p1', 'a.png', 1000],
      ['job-p2', 'b.png', 2000],
    ]);
    expect(ledger.forJob('p1').map((a) => a.node_id)).toEqual(['9']);
  });

  it('names the job that wrote a file a cached node replays', () => {
    const ledger = new ArtifactLedger(10);
    ledger.addJob(job('p1', [{ node_id: '9', cached: false, ui: image('a.png') }]), 1000);
    const [replay] = ledger.addJob(job('p2', [{ node_id: '9', cached: true, ui: image('a.png') }]), 2000);
    expect(replay).toMatchObject({ from_cache: true, produced_by_job: 'job-p1' });
  });

  it('counts produced files by kind, not replays', () => {
    const ledger = new ArtifactLedger(10);
    ledger.addJob(job('p1', [{ node_id: '9', cached: false, ui: image('a.png') }]), 1000);
    ledger.addJob(job('p2', [{ node_id: '9', cached: true, ui: image('a.png') }]), 2000);
    expect(Object.fromEntries(ledger.producedByKind)).toEqual({ image: 1 });
  });

  it('keeps at most its capacity, dropping the oldest', () => {
    const ledger = new ArtifactLedger(3);
    for (let i = 0; i < 5; i++) ledger.addJob(job(`p${i}`, [{ node_id: '9', cached: false, ui: image(`${i}.png`) }]), i);
    expect(ledger.newest(10).map((a) => a.filename)).toEqual(['2.png', '3.png', '4.png']);
  });

  it('marks temp files written before a ComfyUI restart as wiped, and leaves outputs alone', () => {
    const ledger = new ArtifactLedger(10);
    ledger.addJob(job('p1', [{ node_id: '9', cached: false, ui: image('t.png', 'temp') }, { node_id: '10', cached: false, ui: image('o.png') }]), 1000);
    ledger.addJob(job('p2', [{ node_id: '9', cached: false, ui: image('later.png', 'temp') }]), 3000);
    ledger.markTempWiped(2000, 'comfyui');
    expect(ledger.newest(10).map((a) => [a.filename, a.wiped, a.exists])).toEqual([
      ['t.png', true, false],
      ['o.png', false, null],
      ['later.png', false, null],
    ]);
  });
});
