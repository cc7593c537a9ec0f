/**
 * HTTP throughput with Debian's wrk (written in C, so the generator is not the bottleneck): each
 * server in its own process with its stdout going to a file, as a container runtime would keep it.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TICKS, procStat } from './lib.js';

/** Starts one of bench/servers/*.js serving `bodyFile`; resolves with its URL and a stop. */
export function startBaseline(kind, bodyFile, logFile) {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(ROOT, 'bench/servers', `${kind}.js`)], { env: { ...process.env, BODY_FILE: bodyFile }, stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = /port (\d+)/.exec(err);
      if (m) resolve({ url: `http://127.0.0.1:${m[1]}`, child, stop: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM')))) });
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited ${code}: ${err}`)));
  });
}

const ms = (value, unit) => Number(value) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? NaN);

/** Runs wrk against `url`; returns requests/s, latency percentiles, errors and wrk's own CPU use. */
export function runWrk(url, { connections = 50, seconds = 10, threads = 2, serverPid } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    // CPU of wrk and of the server over the run, from /proc (last reading before wrk exits).
    const serverStart = serverPid ? procStat(serverPid).cpuTicks : 0;
    let wrkTicks = 0;
    const poll = setInterval(() => {
      try {
        wrkTicks = procStat(child.pid).cpuTicks;
      } catch {
        /* exited */
      }
    }, 100);
    const started = performance.now();
    child.on('exit', (code) => {
      clearInterval(poll);
      const wall = (performance.now() - started) / 1000;
      const serverTicks = serverPid ? procStat(serverPid).cpuTicks - serverStart : 0;
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`));
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const lat = (p) => {
        const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
        return m ? ms(m[1], m[2]) : NaN;
      };
      const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0';
      const socketErrors = /Socket errors: (.*)/.exec(out)?.[1] ?? null;
      resolve({
        rps,
        p50_ms: lat(50),
        p99_ms: lat(99),
        non2xx: Number(errors),
        socket_errors: socketErrors,
        wrk_cpu_percent: Math.round((wrkTicks / TICKS / wall) * 1000) / 10,
        server_cpu_percent: Math.round((serverTicks / TICKS / wall) * 1000) / 10,
      });
    });
  });
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
