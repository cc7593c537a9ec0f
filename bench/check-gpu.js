// `npm run check:gpu`: on a machine with a real NVIDIA GPU, podscope's NVML readings against
// nvidia-smi's, field by field; the CPU one sample costs through each backend; whether Xid events
// can be registered. Prints a Markdown table for docs/performance.md and exits 0 when every reading
// agrees within its tolerance, 1 when one does not, 2 when there is no GPU to check.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/podscope.js', import.meta.url));
const SMI = process.env.PODSCOPE_NVIDIA_SMI ?? 'nvidia-smi';
const FIELDS = ['index', 'uuid', 'name', 'memory.total', 'memory.used', 'utilization.gpu', 'temperature.gpu', 'power.draw', 'power.limit', 'clocks.sm', 'clocks.max.sm', 'pstate'];
/** Field → podscope's key and how far the two readings, taken a moment apart, may differ. */
const COMPARE = [
  ['uuid', 'uuid', 'exact'],
  ['name', 'name', 'exact'],
  ['memory.total', 'memory_total_mb', 'exact'],
  ['memory.used', 'memory_used_mb', (a, b) => Math.abs(a - b) <= Math.max(256, 0.02 * a)],
  ['utilization.gpu', 'utilization_percent', (a, b) => Math.abs(a - b) <= 15],
  ['temperature.gpu', 'temperature_c', (a, b) => Math.abs(a - b) <= 3],
  ['power.draw', 'power_w', (a, b) => Math.abs(a - b) <= Math.max(15, 0.1 * a)],
  ['power.limit', 'power_limit_w', (a, b) => Math.abs(a - b) <= 1],
  ['clocks.sm', 'sm_clock_mhz', (a, b) => Math.abs(a - b) <= Math.max(30, 0.05 * a)],
  ['clocks.max.sm', 'sm_clock_max_mhz', 'exact'],
  ['pstate', 'pstate', 'exact'],
];

function smiRows() {
  const out = execFileSync(SMI, [`--query-gpu=${FIELDS.join(',')}`, '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10_000 });
  return out.trim().split('\n').map((l) => Object.fromEntries(l.split(',').map((v, i) => [FIELDS[i], v.trim()])));
}

/** CPU seconds (user + system) one nvidia-smi query costs, the mean of five runs. */
function smiCpuPerRun() {
  let total = 0;
  for (let i = 0; i < 5; i++) {
    const r = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time ${SMI} --query-gpu=${FIELDS.join(',')} --format=csv,noheader,nounits > /dev/null`], { encoding: 'utf8' });
    const [u, s] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
    total += u + s;
  }
  return total / 5;
}

/** CPU seconds a process has used so far (/proc/PID/stat, utime + stime). */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const freePort = () => new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let gpus;
try {
  gpus = smiRows();
} catch (err) {
  console.log(`no NVIDIA GPU to check here (${SMI}: ${err.message.split('\n')[0]})`);
  process.exit(2);
}

const port = await freePort();
const pod = spawn(process.execPath, [BIN, 'serve'], {
  env: { ...process.env, PODSCOPE_PORT: String(port), PODSCOPE_HOST: '127.0.0.1', PODSCOPE_GPU_BACKEND: 'nvml', PODSCOPE_ENV: 'development', COMFYUI_URL: 'http://127.0.0.1:9', LOG_LEVEL: 'silent' },
  stdio: 'ignore',
});
const status = async () => (await fetch(`http://127.0.0.1:${port}/debug/status`)).json();
let s;
for (let i = 0; i < 60; i++) {
  await sleep(500);
  s = await status().catch(() => null);
  if (s?.gpu_sampling?.name === 'nvml' && s.gpus.length === gpus.length) break;
}
if (s?.gpu_sampling?.name !== 'nvml') {
  console.log(`podscope did not sample through NVML: ${JSON.stringify(s?.gpu_sampling ?? s?.problems ?? null)}`);
  pod.kill('SIGTERM');
  process.exit(1);
}

// CPU of the NVML sampler process over 20 s of sampling at podscope's default periods.
const connections = await (await fetch(`http://127.0.0.1:${port}/debug/connections`)).json().catch(() => null);
const samplerPid = connections?.nvidia_smi?.nvml?.sampler_pid;
const t0 = samplerPid ? cpuOf(samplerPid) : null;
await sleep(20_000);
const nvmlCpu = samplerPid && t0 !== null ? (cpuOf(samplerPid) - t0) / 20 : null;

s = await status();
const smi = smiRows();
const rows = [];
let disagreements = 0;
for (const [i, g] of s.gpus.entries()) {
  const ref = smi.find((r) => r.uuid === g.uuid) ?? smi[i];
  for (const [field, key, rule] of COMPARE) {
    const a = ref?.[field];
    const b = g[key];
    const num = Number(a);
    const ok = rule === 'exact' ? String(a) === String(b) || (Number.isFinite(num) && num === b) : b !== null && Number.isFinite(num) && rule(num, b);
    if (!ok) disagreements++;
    rows.push(`| ${g.index} | ${field} | ${a} | ${b ?? 'null'} | ${ok ? 'yes' : '**no**'} |`);
  }
}
pod.kill('SIGTERM');

const smiCpu = smiCpuPerRun();
console.log(`## check:gpu, ${new Date().toISOString().slice(0, 10)}: ${s.gpus.length} × ${s.gpus[0].name}, driver ${s.gpu_sampling.driver}`);
console.log('');
console.log('| GPU | field | nvidia-smi | NVML (podscope) | agrees |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
console.log('');
console.log(`- Xid events: ${s.gpu_sampling.xid_events.ok ? 'registered' : `not registered: ${s.gpu_sampling.xid_events.reason}`}`);
console.log(`- NVML functions this driver lacks: ${s.gpu_sampling.missing_functions.join(', ') || 'none'}`);
console.log(`- CPU: NVML sampler ${nvmlCpu === null ? 'unknown' : `${(nvmlCpu * 100).toFixed(2)} % of a core`} (memory every 100 ms, a full sample every second); one nvidia-smi query ${(smiCpu * 1000).toFixed(0)} ms of CPU (${(smiCpu * 100).toFixed(1)} % of a core at one query a second)`);
process.exit(disagreements === 0 ? 0 : 1);
