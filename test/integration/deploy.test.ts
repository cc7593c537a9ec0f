import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startPodscope } from '../../src/main.js';
import { BIN } from '../helpers/spawn.js';
import { alive, until } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const have = (cmd: string, arg = '--version') => spawnSync(cmd, [arg]).status === 0;
const inCI = !!process.env.CI;

describe('deploy/prometheus', () => {
  it.skipIf(!have('promtool') && !inCI)('the scrape config passes promtool check config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podscope-prom-'));
    const token = join(dir, 'podscope.token');
    writeFileSync(token, 'tok');
    writeFileSync(join(dir, 'prometheus.yml'), readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8').replace('/etc/prometheus/podscope.token', token));
    copyFileSync(join(root, 'deploy/prometheus/alerts.yml'), join(dir, 'alerts.yml'));
    const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it.skipIf(!have('promtool') && !inCI)('the alert rules pass promtool check rules and their unit tests', () => {
    const check = spawnSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: join(root, 'deploy/prometheus'), encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/SUCCESS: 7 rules found/);
    const test = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: join(root, 'deploy/prometheus'), encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
  });

  it('covers every required alert', () => {
    const rules = readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8');
    for (const a of ['PodscopeDown', 'ComfyUIDown', 'GPULost', 'JobStalled', 'GPUOutOfMemory', 'JobFailureRateHigh', 'QueueBacklog']) expect(rules).toContain(`alert: ${a}`);
  });

  it('relabels the pod id from the proxy host', () => {
    const cfg = readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8');
    const regex = /regex: '(\(\[a-z0-9\]\+\)[^']+)'/.exec(cfg)![1]!;
    const m = new RegExp(`^${regex}$`).exec('abc123xyz-9188.proxy.runpod.net');
    expect(m?.[1]).toBe('abc123xyz');
  });
});

describe('deploy/grafana', () => {
  it('queries only metrics podscope exports', async () => {
    const pod = await startPodscope({ env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_NVIDIA_SMI: '/nonexistent', LOG_LEVEL: 'silent' }, sinks: [] });
    const res = await fetch(`http://127.0.0.1:${pod.port}/metrics`);
    const exported = new Set([...(await res.text()).matchAll(/^# TYPE (\S+) (\S+)/gm)].map((m) => m[1]!));
    await pod.close();
    const dash = JSON.parse(readFileSync(join(root, 'deploy/grafana/podscope-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const used = new Set<string>();
    for (const p of dash.panels) for (const t of p.targets) for (const m of t.expr.matchAll(/\b(podscope_[a-z_]+|runpod_[a-z_]+)/g)) used.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
    const titles = dash.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['utilization', 'memory', 'power', 'gpu-seconds', 'outcome', 'queue', 'node duration']) expect(titles).toContain(topic);
  });
});

describe('runpod.toml', () => {
  const parsed = JSON.parse(
    spawnSync('python3', ['-c', 'import json,sys,tomllib; print(json.dumps(tomllib.load(open(sys.argv[1],"rb"))))', join(root, 'runpod.toml')], { encoding: 'utf8' }).stdout,
  ) as { name: string; project: Record<string, unknown> & { env_vars: Record<string, unknown> } };

  it('has what runpodctl reads, with the right types', () => {
    expect(typeof parsed.name).toBe('string');
    const p = parsed.project;
    expect(p.uuid).toMatch(/^[0-9a-f]{8}$/);
    expect(typeof p.base_image).toBe('string');
    expect(Array.isArray(p.gpu_types) && (p.gpu_types as unknown[]).every((g) => typeof g === 'string')).toBe(true);
    expect(Number.isInteger(p.gpu_count)).toBe(true);
    expect(p.volume_mount_path).toBe('/workspace');
    expect(Number.isInteger(p.container_disk_size_gb)).toBe(true);
    const ports = String(p.ports).replace(/\s/g, '').split(',');
    expect(ports).toEqual(expect.arrayContaining(['8188/http', '9188/http']));
  });

  it('has string env values and the token from a RunPod secret', () => {
    const env = parsed.project.env_vars;
    expect(Object.values(env).every((v) => typeof v === 'string')).toBe(true);
    expect(env.PODSCOPE_TOKEN).toBe('{{ RUNPOD_SECRET_podscope_token }}');
  });
});

describe('Dockerfile.runpod', () => {
  const df = readFileSync(join(root, 'Dockerfile.runpod'), 'utf8');

  it('builds with Node 22 in a first stage and starts from a RunPod ComfyUI image', () => {
    expect(df).toMatch(/^ARG NODE_IMAGE=node:22-/m);
    expect(df).toMatch(/^ARG COMFYUI_IMAGE=runpod\/comfyui:/m);
    expect(df.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(3);
    expect(df).toMatch(/^FROM \$\{COMFYUI_IMAGE\}$/m);
  });

  it('adds the Node runtime, podscope, the tap, the entrypoint, ports and a health check', () => {
    expect(df).toContain('COPY --from=node-runtime /usr/local/bin/node /usr/local/bin/node');
    expect(df).toContain('COPY comfyui/podscope_tap ./comfyui/podscope_tap');
    expect(df).toMatch(/^EXPOSE 8188 9188$/m);
    expect(df).toMatch(/^HEALTHCHECK .*\n.*\/health/m);
    expect(df).toMatch(/^ENTRYPOINT \["\/opt\/podscope\/entrypoint\.sh"\]$/m);
  });

  it('copies only files that exist', () => {
    for (const m of df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const src of m[1]!.split(/\s+/)) expect(existsSync(join(root, src)), src).toBe(true);
  });
});

describe('deploy/runpod/entrypoint.sh', () => {
  const entry = join(root, 'deploy/runpod/entrypoint.sh');

  it.skipIf(!have('shellcheck') && !inCI)('passes shellcheck', () => {
    const r = spawnSync('shellcheck', [entry], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  function start(comfyCmd: string) {
    const dir = mkdtempSync(join(tmpdir(), 'podscope-entry-'));
    const child = spawn('bash', [entry], {
      env: {
        PATH: `${process.env.PATH}`,
        COMFYUI_START_CMD: comfyCmd.replaceAll('DIR', dir),
        PODSCOPE_BIN: BIN,
        PODSCOPE_PORT: '0',
        PODSCOPE_HOST: '127.0.0.1',
        PODSCOPE_GPU: 'off',
        COMFYUI_URL: 'http://127.0.0.1:9',
        COMFYUI_LOG_FILE: join(dir, 'logs/comfyui.log'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const waitFor = async (re: RegExp) => {
      const deadline = Date.now() + 10_000;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(out);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    return { dir, child, exited, waitFor, out: () => out };
  }


  it('starts both, sends ComfyUI output to the log file, and stops both on SIGTERM', async () => {
    const e = start('echo $$ > DIR/comfy.pid; echo comfy says hi; exec sleep 300');
    await e.waitFor(/podscope listening/);
    const comfyPid = Number(readFileSync(join(e.dir, 'comfy.pid'), 'utf8'));
    expect(readFileSync(join(e.dir, 'logs/comfyui.log'), 'utf8')).toContain('comfy says hi');
    e.child.kill('SIGTERM');
    const code = await e.exited;
    expect(code).not.toBeNull();
    await until(() => !alive(comfyPid));
    expect(e.out()).not.toMatch(/podscope listening[\s\S]*podscope listening/);
  }, 20_000);

  it('exits, stopping podscope, when ComfyUI dies', async () => {
    const e = start('echo $$ > DIR/comfy.pid; exec sleep 300');
    await e.waitFor(/podscope listening/);
    const comfyPid = Number(readFileSync(join(e.dir, 'comfy.pid'), 'utf8'));
    process.kill(comfyPid, 'SIGKILL');
    const code = await e.exited;
    expect(code).not.toBe(0);
    expect(e.out()).toMatch(/received SIGTERM, shutting down/);
  }, 20_000);
});
