/**
 * Readers (routes, views, metrics) get the pod's state read-only: the compiler refuses every way
 * of moving it through PodReader. Each `@ts-expect-error` below is a write the type checker must
 * refuse; `npm test` type-checks the tests, so a reader interface that let one through fails it.
 */
import { describe, expect, it } from 'vitest';
import type { PodReader } from '../../src/state/pod.js';
import { testPod } from '../helpers/pod.js';

describe('the state as readers get it', () => {
  it('is every part of the pod, built before the server starts', () => {
    const reader: PodReader = testPod().state;
    expect([reader.comfy, reader.gpu, reader.host, reader.logs, reader.artifacts, reader.events, reader.health].every((part) => part !== null && part !== undefined)).toBe(true);
  });

  it('offers no way to move it (checked when the tests are type-checked)', () => {
    const reader: PodReader = testPod().state;
    const refused = () => {
      // @ts-expect-error a part cannot be replaced
      reader.comfy = reader.comfy;
      // @ts-expect-error the job tracker cannot be told an event
      reader.comfy.tracker.apply(0, { type: 'status', queue_remaining: 0 });
      // @ts-expect-error nor lose jobs
      reader.comfy.tracker.loseUnfinished(0, 'gone');
      // @ts-expect-error a job it hands out cannot be changed
      reader.comfy.tracker.latest()!.status = 'success';
      // @ts-expect-error nor its nodes
      reader.comfy.tracker.latest()!.nodes.clear();
      // @ts-expect-error ComfyUI's connection cannot be told anything
      reader.comfy.connected('someone');
      // @ts-expect-error nor its frame counters
      reader.comfy.frameArrived(0, 'binary');
      // @ts-expect-error a problem cannot be raised
      reader.health.raise('gpu', 'X', 'x');
      // @ts-expect-error a GPU sample cannot be applied
      reader.gpu!.applySample(0, []);
      // @ts-expect-error the timeline cannot be pushed to
      reader.gpu!.timeline.push({ t: 0, uuids: [], used_mb: [], util: [], power_w: [], temperature_c: [] });
      // @ts-expect-error a log line cannot be appended
      reader.logs.append({ ts: 0, level: 'info', source: 'podscope', message: 'x', job_id: null });
      // @ts-expect-error nor lines charged to a job
      reader.logs.attribute('J', 0, 1);
      // @ts-expect-error an event cannot be recorded
      reader.events.record('gpu', {});
      // @ts-expect-error the stream counts are the route's, read-only here
      reader.events.streams.open++;
      // @ts-expect-error an artifact cannot be added
      reader.artifacts.addJob(reader.comfy.tracker.latest()!, 0);
      // @ts-expect-error the host sample cannot be set
      reader.host.set({ sampled_at: null, memory: null, disks: [], process: null, event_loop: null });
    };
    expect(refused).toBeTypeOf('function');
  });
});
