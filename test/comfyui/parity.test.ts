/**
 * The simulator follows the real ComfyUI: the same scenarios run against both, each with its own
 * podscope, and podscope's answers about them must be the same (times, ids and file names aside).
 * The demo and most integration tests stand on the simulator; this is what keeps them honest.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimComfyUI } from '../../src/sim/comfyui.js';
import { RealComfy } from './real-comfy.js';
import { failingGraph, invalidGraph, quickGraph, samplerGraph, startPod, Submitter, until, type ComfyTarget, type Graph, type Pod } from './harness.js';
import { RELEASE, SIMULATED_RELEASE } from './release.js';

class SimTarget implements ComfyTarget {
  readonly dir = mkdtempSync(join(tmpdir(), 'podscope-sim-'));
  readonly outputDir = join(this.dir, 'output');
  readonly logFile = join(this.dir, 'comfyui.log');
  readonly sim: SimComfyUI;

  constructor(tap: boolean) {
    mkdirSync(this.outputDir);
    mkdirSync(join(this.dir, 'temp'));
    this.sim = new SimComfyUI({ tap, outputDir: this.outputDir, tempDir: join(this.dir, 'temp'), onLog: (m) => appendFileSync(this.logFile, m) });
  }

  get url(): string {
    return this.sim.url;
  }

  async stop(): Promise<void> {
    await this.sim.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Side {
  target: ComfyTarget;
  pod: Pod;
  worker: Submitter;
}

/** podscope's answers about one job, without what differs between two runs. */
async function summary(side: Side, jobId: string) {
  const w = (await side.pod.get(`/debug/workflow?job_id=${jobId}`)).body;
  const a = (await side.pod.get(`/debug/artifacts?job_id=${jobId}`)).body;
  return {
    status: w.status,
    job_id: w.job_id === jobId,
    progress_percent: w.status === 'success' ? w.progress_percent : w.progress_percent === null ? null : 'known',
    started_timing: w.started_timing,
    queued_at_known: w.queued_at !== null,
    error: w.error ? { exception_type: w.error.exception_type, node_id: w.error.node_id, class_type: w.error.class_type, message: w.error.exception_message } : null,
    nodes: w.nodes.map((n: { node_id: string; class_type: string; status: string; started_at: string | null; duration_ms: number | null; timing: string | null; progress: { steps: number; total: number } | null }) => ({
      node: `${n.class_type} ${n.node_id}`,
      status: n.status,
      timed: n.started_at !== null,
      duration_known: n.duration_ms !== null,
      timing: n.timing,
      // Where an interrupt lands in a sampler depends on timing: only whether it had started.
      steps: n.progress === null ? null : n.status === 'interrupted' ? n.progress.steps > 0 : `${n.progress.steps}/${n.progress.total}`,
    })),
    artifacts: (a.artifacts ?? []).map((x: { kind: string; type: string; from_cache: boolean; exists: boolean | null }) => [x.kind, x.type, x.from_cache, x.exists]),
  };
}

async function finished(side: Side, jobId: string) {
  return until(async () => {
    const r = await side.pod.get(`/debug/workflow?job_id=${jobId}`);
    if (r.status !== 200 || !['success', 'error', 'interrupted', 'lost'].includes(r.body.status)) return null;
    const a = await side.pod.get(`/debug/artifacts?job_id=${jobId}`);
    return (a.body.artifacts ?? []).every((x: { exists: boolean | null }) => x.exists !== null) ? r : null;
  }, 60_000);
}

type Scenario = (side: Side, tag: string) => Promise<unknown>;

const scenarios: Record<string, Scenario> = {
  async 'a sampler prompt'(side, tag) {
    await side.worker.submit(samplerGraph({ steps: 6, stepMs: 100, loadMs: 200 }), `p-${tag}`);
    await finished(side, `p-${tag}`);
    return summary(side, `p-${tag}`);
  },
  async 'a node that raises'(side, tag) {
    await side.worker.submit(failingGraph(), `p-${tag}`);
    await finished(side, `p-${tag}`);
    return summary(side, `p-${tag}`);
  },
  async 'a fully cached re-run'(side, tag) {
    const g: Graph = quickGraph();
    await side.worker.submit(g, `first-${tag}`);
    await finished(side, `first-${tag}`);
    await side.worker.submit(g, `p-${tag}`);
    await finished(side, `p-${tag}`);
    return summary(side, `p-${tag}`);
  },
  async 'a prompt without client_id'(side, tag) {
    await side.worker.submit(samplerGraph({ steps: 6, stepMs: 100, loadMs: 200 }), `p-${tag}`, { client: false });
    await finished(side, `p-${tag}`);
    return summary(side, `p-${tag}`);
  },
  async 'a PreviewImage output'(side, tag) {
    await side.worker.submit(samplerGraph({ steps: 1, stepMs: 10, loadMs: 10, output: 'PreviewImage' }), `p-${tag}`);
    await finished(side, `p-${tag}`);
    return summary(side, `p-${tag}`);
  },
  async 'an interrupt'(side, tag) {
    const posted = await side.worker.submit(samplerGraph({ steps: 60, stepMs: 100, loadMs: 50 }), `p-${tag}`);
    await until(() => side.worker.frames.find((f) => f.type === 'progress' && f.data.prompt_id === posted.promptId && (f.data.value as number) >= 3), 30_000, 10);
    await fetch(`${side.target.url}/interrupt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await finished(side, `p-${tag}`);
    return summary(side, `p-${tag}`);
  },
  async 'a rejected prompt'(side, tag) {
    const posted = await side.worker.submit(invalidGraph(), `p-${tag}`);
    const rejection = await until(async () => {
      const q = await side.pod.get('/debug/queue');
      return q.body.rejected.find((r: { at: string; reasons: string[] }) => Date.parse(r.at) >= posted.postedAt - 1000 && r.reasons.length > 0);
    }, 10_000);
    const w = await side.pod.get(`/debug/workflow?job_id=p-${tag}`);
    return { http: posted.status, reasons: rejection.reasons, job_id: rejection.job_id === `p-${tag}`, workflow: w.status === 200 ? [w.body.status, w.body.error.exception_type] : w.status };
  },
};

// The simulator is modelled on one release; against another, its answers are not expected to match.
const unlike = RELEASE === SIMULATED_RELEASE ? null : `not on ComfyUI ${RELEASE}: the simulator is modelled on ComfyUI ${SIMULATED_RELEASE}`;

for (const mode of ['observer', 'tap'] as const) {
  (unlike ? describe.skip : describe)(`the simulator answers as the real ComfyUI ${SIMULATED_RELEASE} does (${mode === 'tap' ? 'with the tap node' : 'without it'})${unlike ? ` [${unlike}]` : ''}`, () => {
    let real: Side;
    let sim: Side;
    let realComfy: RealComfy;
    let simTarget: SimTarget;

    beforeAll(async () => {
      realComfy = new RealComfy({ tap: mode === 'tap' });
      simTarget = new SimTarget(mode === 'tap');
      await Promise.all([realComfy.start(), simTarget.sim.start()]);
      const side = async (target: ComfyTarget): Promise<Side> => {
        const pod = await startPod(target);
        const worker = await new Submitter(target.url).connect();
        await until(async () => (await pod.get('/debug/status')).body.comfyui.tap === (mode === 'tap') || null, 30_000);
        return { target, pod, worker };
      };
      [real, sim] = await Promise.all([side(realComfy), side(simTarget)]);
    }, 180_000);

    afterAll(async () => {
      for (const s of [real, sim]) {
        s?.worker.close();
        await s?.pod.close();
      }
      await realComfy?.stop();
      await simTarget?.stop();
    });

    for (const [name, scenario] of Object.entries(scenarios)) {
      it(name, async () => {
        const tag = randomUUID().slice(0, 8);
        const fromReal = await scenario(real, tag);
        const fromSim = await scenario(sim, tag);
        if (process.env.PARITY_PRINT) console.log(name, JSON.stringify(fromReal));
        expect(fromSim).toEqual(fromReal);
      });
    }
  });
}
