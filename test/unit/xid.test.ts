/** What an Xid means, how severe podscope makes it, and which failed job's forensics it joins. */
import { describe, expect, it } from 'vitest';
import { xidMeaning, xidSentence, xidSeverity } from '../../src/shared/xid-catalog.js';
import { xidsDuring } from '../../src/finish/forensics.js';
import type { ReadonlyJob } from '../../src/shared/job-types.js';

describe('an Xid', () => {
  it("is a warning when NVIDIA's immediate action is to restart the application", () => {
    expect([13, 31, 43].map(xidSeverity)).toEqual(['warning', 'warning', 'warning']);
  });

  it('is an error when the GPU needs a reset, the machine a restart, or support a call', () => {
    expect([48, 63, 64, 74, 79, 95, 119, 120].map(xidSeverity)).toEqual(Array(8).fill('error'));
  });

  it('that podscope does not know is named so, and treated as the GPU’s', () => {
    expect(xidMeaning(9999)).toMatchObject({ culprit: 'gpu', meaning: expect.stringMatching(/no description/) });
    expect(xidSeverity(9999)).toBe('error');
  });

  it('reads as one sentence saying whose failure it is', () => {
    expect(xidSentence(0, 79, '2026-12-07T10:00:00.000Z')).toBe("GPU 0 reported Xid 79 (GPU has fallen off the bus) at 2026-12-07T10:00:00.000Z: the failure is the GPU's or its driver's, not the workflow's; NVIDIA's immediate action: RESTART_BM");
  });
});

describe("a failed job's Xids", () => {
  const job = { instance: 'gpu1', started_at: 10_000, finished_at: 20_000, first_seen_at: 9000 } as unknown as ReadonlyJob;
  const xids = [
    { at: 5000, index: 1, uuid: 'GPU-b', xid: 31 }, // before it ran
    { at: 15_000, index: 1, uuid: 'GPU-b', xid: 79 }, // while it ran, on its GPU
    { at: 16_000, index: 0, uuid: 'GPU-a', xid: 48 }, // while it ran, on another instance's GPU
    { at: 24_000, index: 1, uuid: 'GPU-b', xid: 43 }, // just after: the GPU's report about it
    { at: 40_000, index: 1, uuid: 'GPU-b', xid: 13 }, // long after
  ];

  it('are those its own GPUs reported while it ran and just after', () => {
    expect(xidsDuring(job, xids, new Set(['GPU-b']), 50_000).map((s) => /Xid (\d+)/.exec(s)![1])).toEqual(['79', '43']);
  });

  it("are every GPU's when it is the pod's only ComfyUI, and none when its GPUs are unknown", () => {
    expect(xidsDuring(job, xids, undefined, 50_000)).toHaveLength(3);
    expect(xidsDuring(job, xids, null, 50_000)).toEqual([]);
  });
});
