import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../src/demo.js';
import { freePort } from '../helpers/ports.js';

const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;
const TOKEN = 'scrape-token-0123456789';

let demo: Demo | null = null;
let prom: ChildProcess | null = null;
afterAll(async () => {
  prom?.kill('SIGKILL');
  await demo?.close();
});

async function query(port: number, q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await r.json()) as { data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  return body.data?.result ?? [];
}

describe('a real Prometheus scraping the demo', () => {
  // CI installs Debian's prometheus package; a developer machine without it skips, CI never does.
  it.skipIf(!hasPrometheus && !process.env.CI)(
    'sees runpod_gpu_seconds_total increase and job metrics appear',
    async () => {
      demo = await startDemo({ env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', PODSCOPE_TOKEN: TOKEN, LOG_LEVEL: 'silent' }, stepMs: 20, quiet: true });
      const dir = mkdtempSync(join(tmpdir(), 'podscope-prometheus-'));
      writeFileSync(join(dir, 'token'), TOKEN);
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global: { scrape_interval: 1s, evaluation_interval: 1s }',
          'scrape_configs:',
          '  - job_name: podscope',
          '    scrape_interval: 1s',
          '    scrape_timeout: 900ms',
          `    authorization: { type: Bearer, credentials_file: ${join(dir, 'token')} }`,
          `    static_configs: [ { targets: ['127.0.0.1:${demo.pod.port}'], labels: { pod_id: demo-pod } } ]`,
          '',
        ].join('\n'),
      );
      const port = await freePort();
      prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
      const deadline = Date.now() + 40_000;
      let first: number | null = null;
      let grew = false;
      let jobs = false;
      let up = false;
      while (Date.now() < deadline && !(grew && jobs && up)) {
        await new Promise((r) => setTimeout(r, 1000));
        const g = await query(port, 'runpod_gpu_seconds_total').catch(() => []);
        if (g.length > 0) {
          const v = Number(g[0]!.value[1]);
          if (first === null) first = v;
          else if (v > first) grew = true;
        }
        jobs = (await query(port, 'podscope_jobs_finished_total{status="success"} > 0').catch(() => [])).length > 0;
        up = (await query(port, 'up{job="podscope"} == 1').catch(() => [])).length > 0;
      }
      expect(up).toBe(true);
      expect(grew).toBe(true);
      expect(jobs).toBe(true);
      const busy = await query(port, 'podscope_gpu_busy_seconds_total');
      expect(busy.map((s) => s.metric.gpu).sort()).toEqual(['0', '1']);
    },
    60_000,
  );
});
