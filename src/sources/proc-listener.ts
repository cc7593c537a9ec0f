/**
 * The process listening on a loopback TCP port, and one variable of its environment, through
 * Linux's /proc: the socket's inode from /proc/net/tcp{,6}, the process whose fd points at that
 * socket, then its environ. Used to learn a ComfyUI's CUDA_VISIBLE_DEVICES when its command line
 * does not name its GPU. Anything podscope may not read (another user's process, no /proc, another
 * PID namespace) is unknown, never a guess.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** A socket in LISTEN state (`0A`) on `port`, by inode, from the text of /proc/net/tcp or tcp6. */
export function listeningInodes(table: string, port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    if (f.length < 10 || f[3] !== '0A') continue;
    if (f[1]!.split(':')[1] === hexPort && f[9] !== '0') out.push(f[9]!);
  }
  return out;
}

/** One variable of a NUL-separated environ, or null when it is not set. */
export function environValue(environ: string, name: string): string | null {
  for (const entry of environ.split('\0')) if (entry.startsWith(`${name}=`)) return entry.slice(name.length + 1);
  return null;
}

export type ListenerEnv = { pid: number; value: string | null } | { pid: null; reason: string };

/** At most this many processes are looked at (a pod has dozens; a host-wide /proc has more than podscope should walk). */
const MAX_PIDS = 4096;

/** The process listening on the loopback `port`, and its `name` variable; or why it cannot be told. */
export async function listenerEnv(port: number, name: string, proc = '/proc'): Promise<ListenerEnv> {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    const text = await readFile(`${proc}/${table}`, 'utf8').catch(() => '');
    for (const i of listeningInodes(text, port)) inodes.add(i);
  }
  if (inodes.size === 0) return { pid: null, reason: `no socket listening on port ${port} is visible in ${proc}/net/tcp` };
  let pids: string[];
  try {
    pids = (await readdir(proc)).filter((d) => /^\d+$/.test(d)).slice(0, MAX_PIDS);
  } catch {
    return { pid: null, reason: `${proc} cannot be read` };
  }
  for (const pid of pids) {
    const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (!m || !inodes.has(m[1]!)) continue;
      try {
        return { pid: Number(pid), value: environValue(await readFile(`${proc}/${pid}/environ`, 'utf8'), name) };
      } catch {
        return { pid: null, reason: `the environment of process ${pid}, which listens on port ${port}, cannot be read` };
      }
    }
  }
  return { pid: null, reason: `the process listening on port ${port} is not one podscope may look at (another user's, or another PID namespace)` };
}
