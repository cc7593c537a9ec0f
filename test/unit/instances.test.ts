/** The pod's ComfyUI instances: a job found on whichever runs it, the latest and running ones across all. */
import { describe, expect, it } from 'vitest';
import { ComfyState } from '../../src/state/comfy.js';
import { Instances } from '../../src/state/instances.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';

const graph = { '1': { class_type: 'A', inputs: {} }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0] } } };
const item = (n: number, id: string, jobId: string) => decodeQueueItem([n, id, graph, { job_id: jobId }, ['2']])!;
const comfy = (name: string) => new ComfyState(`http://127.0.0.1:${name === 'a' ? 8188 : 8189}`, { name, jobIdKey: 'job_id', historyLimit: 10 });

describe('the instances', () => {
  it('find a job by platform id or prompt id on whichever instance runs it', () => {
    const [a, b] = [comfy('a'), comfy('b')];
    b.tracker.applyQueue(1000, [item(1, 'P1', 'job-1')], []);
    const all = new Instances(a, b);
    expect(all.findJob('job-1')?.comfy.name).toBe('b');
    expect(all.findJob('P1')?.job.instance).toBe('b');
    expect(all.findJob('nope')).toBeUndefined();
  });

  it('take the newest prompt when two instances carry the same job id (a retry sent elsewhere)', () => {
    const [a, b] = [comfy('a'), comfy('b')];
    a.tracker.applyQueue(1000, [item(1, 'P1', 'job-r')], []);
    b.tracker.applyQueue(5000, [item(1, 'P2', 'job-r')], []);
    expect(new Instances(a, b).findJob('job-r')?.job.prompt_id).toBe('P2');
  });

  it('list the running jobs of every instance, the one that started first first', () => {
    const [a, b] = [comfy('a'), comfy('b')];
    b.tracker.applyQueue(1000, [item(1, 'PB', 'jb')], []);
    a.tracker.applyQueue(2000, [item(1, 'PA', 'ja')], []);
    const running = new Instances(a, b).runningJobs();
    expect(running.map((r) => `${r.comfy.name}:${r.job.job_id}`)).toEqual(['b:jb', 'a:ja']);
  });

  it('refuse a second instance under a name already followed', () => {
    const all = new Instances(comfy('a'));
    expect(() => all.add(comfy('a'))).toThrow(/already followed/);
    all.add(comfy('b'));
    expect(all.names()).toEqual(['a', 'b']);
  });
});
