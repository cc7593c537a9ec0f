/**
 * The `podscope` command line (contract section 1): `serve` (the default) and `demo` run
 * podscope; the other commands are clients of a running pod, human-readable by default and raw
 * JSON with --json.
 */
import { VERSION } from '../version.js';
import { renderArtifacts, renderJobs, renderLogLine, renderMemory, renderQueue, renderStatus, renderWorkflow } from '../shared/text-views.js';
import { CliError, errorMessage, followEvents, getJson, type ClientOptions } from './client.js';

export const USAGE = `podscope ${VERSION}: debug sidecar for ComfyUI on RunPod GPU pods

Usage:
  podscope [serve]                   run the sidecar (configured by environment variables; see docs/configuration.md)
  podscope demo [--gpus N] [--step-ms MS] [--summary-s S]
                                     the sidecar against a simulated ComfyUI, GPUs and workload
  podscope status    [options]       pod status, GPUs, current job, problems
  podscope workflow  [options] [--job ID] [--instance NAME]   a job node by node (the running or latest one by default)
  podscope queue     [options] [--instance NAME]   running and pending prompts
  podscope jobs      [options] [--status S] [--limit N] [--instance NAME]   the jobs remembered, newest first
  podscope logs      [options] [--lines N] [--level L] [--job ID] [--source S] [--grep TEXT] [--instance NAME] [--follow]
  podscope memory    [options]       GPU, ComfyUI, host and podscope memory
  podscope artifacts [options] [--job ID] [--instance NAME]   a job's outputs
                     --instance NAME: only that ComfyUI of a pod that runs several (podscope status names them)
  podscope wait --job ID [--timeout S] [--interval S] [options]
                                     wait for a job: exit 0 success, 1 failed or interrupted,
                                     2 timeout, 3 pod unreachable or token refused; it follows
                                     the job's events and looks again every --interval (1 s)

Exit codes: 64 for a usage error (an unknown option, or a value podscope refuses), 4 for an
unknown job, 3 when the pod cannot be reached or refuses the token.

Options:
  --url URL      podscope's address (default http://127.0.0.1:9188, or PODSCOPE_URL)
  --token T      bearer token (default PODSCOPE_TOKEN)
  --json         print the raw JSON answer
  --help         this help
`;

interface Args {
  command: string;
  flags: Map<string, string | true>;
  rest: string[];
}

const BOOLEAN_FLAGS = new Set(['json', 'help', 'follow', 'h', 'version']);

/** The options each command takes (besides --help); anything else is a usage error. */
const CLIENT = ['url', 'token', 'json'];
export const OPTIONS: Record<string, readonly string[]> = {
  serve: ['version'],
  demo: ['gpus', 'step-ms', 'summary-s'],
  status: CLIENT,
  workflow: [...CLIENT, 'job', 'instance'],
  queue: [...CLIENT, 'instance'],
  jobs: [...CLIENT, 'status', 'limit', 'instance'],
  memory: CLIENT,
  artifacts: [...CLIENT, 'job', 'instance'],
  logs: [...CLIENT, 'lines', 'level', 'job', 'source', 'grep', 'follow', 'instance'],
  wait: [...CLIENT, 'job', 'timeout', 'interval'],
  help: [],
};

/** The known option nearest to a mistyped one (one edit or one swap away, or a prefix), for the message. */
function nearest(name: string, known: readonly string[]): string | undefined {
  const close = (a: string, b: string) => {
    if (Math.abs(a.length - b.length) > 1) return false;
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    const swapped = a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
    return swapped || a.slice(i + 1) === b.slice(i + 1) || a.slice(i + 1) === b.slice(i) || a.slice(i) === b.slice(i + 1);
  };
  return known.find((k) => close(name, k) || k.startsWith(name));
}

export function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string | true>();
  const rest: string[] = [];
  let command = '';
  const pending: Array<[string, string | undefined, boolean]> = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--') || a === '-h') {
      const [name, inline] = a.replace(/^-+/, '').split(/=(.*)/s, 2) as [string, string | undefined];
      if (inline !== undefined || BOOLEAN_FLAGS.has(name)) pending.push([name, inline, true]);
      else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) pending.push([name, argv[++i]!, true]);
      else pending.push([name, undefined, false]);
    } else if (!command) {
      command = a;
    } else {
      rest.push(a);
    }
  }
  command ||= 'serve';
  const known = OPTIONS[command];
  if (!known) throw new CliError(`unknown command ${JSON.stringify(command)}`, 64);
  for (const [name, value, hasValue] of pending) {
    if (name !== 'help' && name !== 'h' && !known.includes(name)) {
      const hint = nearest(name, known);
      throw new CliError(`unknown option --${name} for \`podscope ${command}\`${hint ? ` (did you mean --${hint}?)` : ''}`, 64);
    }
    if (BOOLEAN_FLAGS.has(name)) flags.set(name, value ?? true);
    else if (!hasValue || value === undefined) throw new CliError(`--${name} needs a value`, 64);
    else flags.set(name, value);
  }
  if (rest.length > 0) throw new CliError(`unexpected argument ${JSON.stringify(rest[0])} for \`podscope ${command}\``, 64);
  const url = flags.get('url');
  if (typeof url === 'string' && !/^https?:\/\/[^/\s]+/.test(url)) throw new CliError(`--url must be an http:// or https:// URL (got ${JSON.stringify(url.slice(0, 80))})`, 64);
  const lines = flags.get('lines');
  if (typeof lines === 'string' && !/^[1-9]\d{0,6}$/.test(lines)) throw new CliError(`--lines must be a whole number from 1 to 1000000 (got ${JSON.stringify(lines.slice(0, 20))})`, 64);
  return { command, flags, rest };
}

function str(args: Args, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function client(args: Args, env: Record<string, string | undefined>): ClientOptions {
  return { url: str(args, 'url') ?? env.PODSCOPE_URL ?? 'http://127.0.0.1:9188', token: str(args, 'token') ?? env.PODSCOPE_TOKEN };
}

/**
 * Whether whoever reads the client's output has gone (`podscope logs --follow | head -1`). A client
 * command then ends quietly, as a pipe's reader expects: no stack trace, `--follow` stops, and
 * `wait` still exits with the job's code.
 */
let readerGone = false;
function quietWhenReaderGoes(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => (readerGone = true));
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** The query parameters the CLI's options become, by option: a value the pod refuses names the option. */
const PARAMETER_OPTION: Record<string, string> = { job_id: 'job', q: 'grep', lines: 'lines', level: 'level', source: 'source', status: 'status', limit: 'limit', instance: 'instance' };

/**
 * Says why the pod refused a request and gives the exit code: a value of one of our options that
 * the pod refuses (400 INVALID_PARAMETER) is a usage error like any other (64), naming the option;
 * not found is 4; anything else 1.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function refused(body: any, status: number): number {
  const parameter: unknown = body?.error?.details?.parameter;
  const option = typeof parameter === 'string' ? PARAMETER_OPTION[parameter] : undefined;
  if (status === 400 && body?.error?.code === 'INVALID_PARAMETER' && option) {
    process.stderr.write(`podscope: --${option}: ${body.error.message}\n`);
    return 64;
  }
  process.stderr.write(`podscope: ${errorMessage(body, status)}\n`);
  return status === 404 ? 4 : 1;
}

async function view(args: Args, env: Record<string, string | undefined>, path: string, render: (b: unknown) => string): Promise<number> {
  const { status, body } = await getJson(client(args, env), path);
  if (status >= 400) return refused(body, status);
  out(args.flags.has('json') ? JSON.stringify(body, null, 2) : render(body));
  return 0;
}

/** The query string the options become: `--job` is `job_id`, the others keep their names. */
function query(args: Args, options: readonly string[]): string {
  const params = new URLSearchParams();
  for (const option of options) {
    const v = str(args, option);
    if (v !== undefined) params.set(option === 'job' ? 'job_id' : option, v);
  }
  return params.size > 0 ? `?${params}` : '';
}

async function logs(args: Args, env: Record<string, string | undefined>): Promise<number> {
  const params = new URLSearchParams();
  const map: Record<string, string> = { lines: 'lines', level: 'level', job: 'job_id', source: 'source', grep: 'q', after: 'after', instance: 'instance' };
  for (const [flag, param] of Object.entries(map)) {
    const v = str(args, flag);
    if (v !== undefined) params.set(param, v);
  }
  const opts = client(args, env);
  if (!args.flags.has('follow')) {
    return view(args, env, `/debug/logs?${params}`, (b) => ((b as { lines: unknown[] }).lines.map(renderLogLine).join('\n') || '(no lines)'));
  }
  // Follow: poll with the seq cursor, so a dropped connection or a proxy cut loses nothing.
  let after = 0;
  params.set('lines', params.get('lines') ?? '100');
  for (;;) {
    if (after > 0) params.set('after', String(after));
    const { status, body } = await getJson(opts, `/debug/logs?${params}`);
    if (status >= 400) return refused(body, status);
    for (const l of body.lines as Array<{ seq: number }>) {
      out(args.flags.has('json') ? JSON.stringify(l) : renderLogLine(l));
      after = Math.max(after, l.seq);
    }
    params.set('lines', '1000');
    await new Promise((r) => setTimeout(r, 1000));
    if (readerGone) return 0;
  }
}

/**
 * The prompts ComfyUI rejected while `wait` looked for a job it never saw. Times are the pod's
 * (`sampled_at` of the first /debug/queue answer), so a client clock that differs does not matter.
 * A prompt is usually submitted just before the wait starts, so the minute before counts too.
 */
class RejectionWatch {
  private since: number | null = null;
  private readonly seen = new Map<string, string>();

  /** Sentences for the rejections not reported yet, from one /debug/queue answer. */
  fresh(answer: { status: number; body: any }): string[] {
    if (answer.status !== 200 || !Array.isArray(answer.body?.rejected)) return [];
    const sampled = Date.parse(answer.body.sampled_at ?? answer.body.as_of ?? '');
    if (this.since === null) this.since = (Number.isFinite(sampled) ? sampled : Date.now()) - 60_000;
    const found: string[] = [];
    for (const r of answer.body.rejected as Array<{ at: string; job_id: string | null; reasons?: string[] }>) {
      const key = `${r.at} ${r.job_id ?? ''}`;
      if (this.seen.has(key) || !(Date.parse(r.at) >= this.since)) continue;
      const reasons = Array.isArray(r.reasons) && r.reasons.length > 0 ? r.reasons.map(String) : ['no reason recorded'];
      const sentence = `ComfyUI rejected a prompt at ${r.at} (HTTP 400, never queued${r.job_id ? `, job ${r.job_id}` : ', job id unknown without the tap'}): ${reasons.join('; ')}`;
      this.seen.set(key, sentence);
      found.push(sentence);
    }
    return found;
  }

  /** For the timeout line: the rejections seen, which may explain a job that never appeared. */
  summary(): string {
    if (this.seen.size === 0) return '';
    const n = this.seen.size;
    return `; meanwhile ${n === 1 ? 'a prompt was' : `${n} prompts were`} rejected, which may have been this job:\n${[...this.seen.values()].map((s) => `  ${s}`).join('\n')}`;
  }
}

/**
 * `podscope wait`: follows the job until it ends or the time is up. The job's events on
 * /debug/events wake it at once; it also polls every --interval, which is all it does against a
 * podscope without the event stream or behind a proxy that cuts it.
 */
async function wait(args: Args, env: Record<string, string | undefined>): Promise<number> {
  const job = str(args, 'job');
  if (!job) throw new CliError('wait needs --job ID', 64);
  const timeoutS = Number(str(args, 'timeout') ?? 3600);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new CliError('--timeout must be a positive number of seconds', 64);
  const intervalMs = Math.max(100, Number(str(args, 'interval') ?? 1) * 1000);
  const deadline = Date.now() + timeoutS * 1000;
  const opts = client(args, env);
  const waker = new Waker();
  // Once connected, one more look: whatever happened before the stream opened is then seen too.
  const events = followEvents(opts, `/debug/events?job_id=${encodeURIComponent(job)}&types=job_queued,job_started,job_finished`, () => waker.wake(), () => waker.wake());
  try {
    return await waitLoop(args, opts, job, { timeoutS, intervalMs, deadline, sleep: (ms) => waker.sleep(ms) });
  } finally {
    events.close();
  }
}

/** A sleep an event cuts short; an event that comes while awake cuts the next sleep. */
class Waker {
  private wakeNow: (() => void) | null = null;
  private owed = false;

  sleep(ms: number): Promise<void> {
    if (this.owed) {
      this.owed = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeNow = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeNow = done;
    });
  }

  wake(): void {
    if (this.wakeNow) this.wakeNow();
    else this.owed = true;
  }
}

async function waitLoop(args: Args, opts: ClientOptions, job: string, t: { timeoutS: number; intervalMs: number; deadline: number; sleep: (ms: number) => Promise<void> }): Promise<number> {
  const { timeoutS, intervalMs, deadline } = t;
  let last = '';
  const rejections = new RejectionWatch();
  for (;;) {
    const { status, body } = await getJson(opts, `/debug/workflow?job_id=${encodeURIComponent(job)}`);
    if (status === 200) {
      const s = body.status as string;
      if (s !== last && !args.flags.has('json')) process.stderr.write(`job ${job}: ${s}${s === 'running' && body.progress_percent !== null ? ` ${body.progress_percent}%` : ''}\n`);
      last = s;
      if (s === 'success') {
        out(args.flags.has('json') ? JSON.stringify(body, null, 2) : `job ${job} succeeded in ${body.duration_s ?? '?'} s`);
        return 0;
      }
      if (s === 'error' || s === 'interrupted' || s === 'lost') {
        if (args.flags.has('json')) out(JSON.stringify(body, null, 2));
        else {
          const e = body.error;
          if (e?.exception_type === 'PromptRejected') {
            // ComfyUI refused it at POST /prompt: every reason, one per line.
            out(`job ${job} was rejected by ComfyUI (HTTP 400, never queued):\n${String(e.exception_message).split('\n').map((r) => `  ${r}`).join('\n')}`);
            return 1;
          }
          const where = e?.node_id ? ` in node ${e.node_id} (${e.class_type})` : '';
          out(`job ${job} ${s}${where}: ${e ? `${e.exception_type}: ${String(e.exception_message).split('\n')[0]}` : (body.lost_reason ?? 'no error recorded')}`);
        }
        return 1;
      }
    } else if (status === 404) {
      // Never seen: a rejection without a job id (no tap) may be this job's; say so as it appears.
      if (!last) for (const r of rejections.fresh(await getJson(opts, '/debug/queue'))) if (!args.flags.has('json')) process.stderr.write(`podscope: ${r}\n`);
    } else {
      process.stderr.write(`podscope: ${errorMessage(body, status)}\n`);
    }
    if (Date.now() >= deadline) {
      out(`timed out after ${timeoutS} s waiting for job ${job} (last seen: ${last || 'not yet seen'})${last ? '' : rejections.summary()}`);
      return 2;
    }
    await t.sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * The commands that run podscope itself rather than talk to one: given by the entry point
 * (bin/podscope.js), which composes them, so the client never imports the server.
 */
export interface Runners {
  serve(env: Record<string, string | undefined>): Promise<number>;
  demo(env: Record<string, string | undefined>, opts: { gpus: number; stepMs: number; summaryMs: number }): Promise<number>;
}

export async function cli(argv: string[], env: Record<string, string | undefined>, runners: Runners): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`podscope: ${(err as Error).message}\n\n${USAGE}`);
    return 64;
  }
  // The server and the demo watch their own stdout (they go on serving without it).
  if (args.command !== 'serve' && args.command !== 'demo') quietWhenReaderGoes();
  if (args.flags.has('version') && args.command === 'serve') {
    out(VERSION);
    return 0;
  }
  if (args.flags.has('help') || args.flags.has('h') || args.command === 'help' || args.command === '--help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    switch (args.command) {
      case 'serve':
        return await runners.serve(env);
      case 'demo': {
        const gpus = Number(str(args, 'gpus') ?? 2);
        const stepMs = Number(str(args, 'step-ms') ?? 150);
        if (!Number.isInteger(gpus) || gpus < 1 || gpus > 16) throw new CliError('--gpus must be an integer from 1 to 16', 64);
        if (!Number.isFinite(stepMs) || stepMs < 1 || stepMs > 10_000) throw new CliError('--step-ms must be from 1 to 10000', 64);
        const summaryS = Number(str(args, 'summary-s') ?? 30);
        if (!Number.isFinite(summaryS) || summaryS < 1 || summaryS > 3600) throw new CliError('--summary-s must be from 1 to 3600', 64);
        return await runners.demo(env, { gpus, stepMs, summaryMs: summaryS * 1000 });
      }
      case 'status':
        return await view(args, env, '/debug/status', renderStatus);
      case 'workflow':
        return await view(args, env, `/debug/workflow${query(args, ['job', 'instance'])}`, renderWorkflow);
      case 'queue':
        return await view(args, env, `/debug/queue${query(args, ['instance'])}`, renderQueue);
      case 'jobs':
        return await view(args, env, `/debug/jobs${query(args, ['status', 'limit', 'instance'])}`, renderJobs);
      case 'memory':
        return await view(args, env, '/debug/memory', renderMemory);
      case 'artifacts':
        return await view(args, env, `/debug/artifacts${query(args, ['job', 'instance'])}`, renderArtifacts);
      case 'logs':
        return await logs(args, env);
      case 'wait':
        return await wait(args, env);
      case '--version':
      case 'version':
        out(VERSION);
        return 0;
      default:
        process.stderr.write(`podscope: unknown command "${args.command}"\n\n${USAGE}`);
        return 64;
    }
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`podscope: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
