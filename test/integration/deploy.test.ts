import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startPodscope } from '../../src/main.js';
import { z } from 'zod';
import { isSecretName } from '../../src/secrets.js';
import { SimComfyUI } from '../../src/sim/comfyui.js';

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
    expect(check.stdout).toMatch(/SUCCESS: 10 rules found/);
    const test = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: join(root, 'deploy/prometheus'), encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
  });

  it('covers every required alert', () => {
    const rules = readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8');
    for (const a of ['PodscopeDown', 'ComfyUIDown', 'GPULost', 'JobStalled', 'GPUOutOfMemory', 'JobFailureRateHigh', 'QueueBacklog', 'GPUNeedsReset', 'GPUsMissing']) expect(rules).toContain(`alert: ${a}`);
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

/**
 * RunPod's REST API template body (POST https://rest.runpod.io/v1/templates, TemplateCreateInput),
 * transcribed from its documented OpenAPI schema (docs.runpod.io, api-reference templates): name
 * and imageName required; category NVIDIA | AMD | CPU; ports as "port/http|tcp" strings; env as a
 * string map. Unknown fields are refused, as they are by the schema.
 */
const TemplateCreateInput = z
  .object({
    name: z.string().min(1),
    imageName: z.string().min(1),
    category: z.enum(['NVIDIA', 'AMD', 'CPU']).optional(),
    containerDiskInGb: z.number().int().min(1).optional(),
    containerRegistryAuthId: z.string().optional(),
    dockerEntrypoint: z.array(z.string()).optional(),
    dockerStartCmd: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    isPublic: z.boolean().optional(),
    isServerless: z.boolean().optional(),
    ports: z.array(z.string().regex(/^\d{1,5}\/(http|tcp)$/)).optional(),
    readme: z.string().optional(),
    volumeInGb: z.number().int().min(0).optional(),
    volumeMountPath: z.string().optional(),
  })
  .strict();

describe('deploy/runpod/template.json', () => {
  const template = JSON.parse(readFileSync(join(root, 'deploy/runpod/template.json'), 'utf8'));

  it('is a valid body for RunPod\u2019s REST API template endpoint', () => {
    expect(TemplateCreateInput.safeParse(template).error?.issues ?? []).toEqual([]);
  });

  it('describes a pod: ComfyUI and podscope over the proxy, the base image\u2019s own ports kept, a volume at /workspace', () => {
    expect(template.isServerless).toBe(false);
    expect(template.ports).toEqual(expect.arrayContaining(['8188/http', '9188/http', '8080/http', '8888/http', '22/tcp']));
    expect(template.volumeMountPath).toBe('/workspace');
  });

  it('takes the token from a RunPod secret, never a literal', () => {
    expect(template.env.PODSCOPE_TOKEN).toBe('{{ RUNPOD_SECRET_podscope_token }}');
    const literal = Object.entries(template.env as Record<string, string>).filter(([k, v]) => isSecretName(k) && !/^\{\{ RUNPOD_SECRET_\w+ \}\}$/.test(v));
    expect(literal).toEqual([]);
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

  it('adds the Node runtime, podscope, the tap, ports and a health check on the workload', () => {
    expect(df).toContain('COPY --from=node-runtime /usr/local/bin/node /usr/local/bin/node');
    expect(df).toContain('COPY comfyui/podscope_tap /opt/podscope/comfyui/podscope_tap');
    expect(df).toMatch(/^EXPOSE 8188 9188$/m);
    expect(df).toMatch(/^HEALTHCHECK .*\n\s+CMD \["node", "\/opt\/podscope\/healthcheck\.mjs"\]$/m);
  });

  it("wraps the base's start-up instead of replacing it: the wrapper is the entrypoint, the base's command is recorded", () => {
    expect(df).toMatch(/^ENTRYPOINT \["\/opt\/podscope\/wrap\.sh"\]$/m);
    expect(df).toMatch(/^ARG BASE_CMD=\/start\.sh$/m);
    expect(df).toMatch(/^ENV PODSCOPE_WRAPPED_CMD=\$\{BASE_CMD\}/m);
    expect(df).not.toMatch(/^CMD /m); // a CMD would replace the base's; the wrapper runs BASE_CMD itself
    const final = df.slice(df.indexOf('FROM ${COMFYUI_IMAGE}'));
    expect(final).not.toMatch(/^WORKDIR /m); // the base's working directory stays its own
  });

  it('copies only files that exist', () => {
    for (const m of df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const src of m[1]!.split(/\s+/)) expect(existsSync(join(root, src)), src).toBe(true);
  });
});

describe('the health check', () => {
  const check = join(root, 'deploy/runpod/healthcheck.mjs');
  const runWith = (env: Record<string, string>) => new Promise<number | null>((resolve) => spawn(process.execPath, [check], { env, stdio: 'ignore' }).once('exit', resolve));
  const run = (url: string) => runWith({ COMFYUI_URL: url });

  it("is healthy while ComfyUI answers, whatever podscope's state", async () => {
    const sim = new SimComfyUI();
    await sim.start();
    try {
      expect(await run(sim.url)).toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('is unhealthy when ComfyUI does not answer', async () => {
    expect(await run('http://127.0.0.1:9')).toBe(1);
  });

  it('with COMFYUI_URLS, is healthy only while every ComfyUI answers', async () => {
    const sim = new SimComfyUI();
    await sim.start();
    try {
      expect(await runWith({ COMFYUI_URLS: `gpu0=${sim.url}, ${sim.url}/` })).toBe(0);
      expect(await runWith({ COMFYUI_URLS: `gpu0=${sim.url},gpu1=http://127.0.0.1:9` })).toBe(1);
    } finally {
      await sim.stop();
    }
  });
});

describe('shell scripts', () => {
  it.skipIf(!have('shellcheck') && !inCI)('pass shellcheck: the wrapper and the fake base images', () => {
    const scripts = [join(root, 'deploy/runpod/wrap.sh'), ...['runpod-comfyui', 'worker-comfyui', 'supervisord', 'runpod-base'].map((b) => join(root, `test/fixtures/bases/${b}.sh`))];
    const r = spawnSync('shellcheck', scripts, { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
