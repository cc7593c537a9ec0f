/**
 * A simulated ComfyUI for tests and the demo: a real HTTP and websocket server on loopback with
 * ComfyUI's message shapes and, above all, its routing rules (docs/comfyui-protocol.md 1.2):
 *
 * - an event with a sid goes to that socket only, and is dropped when it is not connected;
 * - `execution_*`, `executing` and `executed` are sent only when the prompt has a client_id;
 * - `progress` goes to the submitter, or to everyone when the prompt has no client_id;
 * - `progress_state` goes to the submitter (0.3.57+), or to everyone in 0.3.44–0.3.56;
 * - `status` queue frames go to everyone; `logs` only to subscribed ids with an open socket.
 *
 * Nodes behave by class_type: loaders and encoders are quick, KSampler runs `steps` steps (and
 * runs out of GPU memory when the latent batch is absurdly large), SimSleep runs long without
 * progress, output nodes write files. A node whose inputs did not change since the last run is
 * cached. Every clientId that ever connected is recorded, so a test can prove podscope never
 * used a submitter's id.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, writeFileSync, rmSync, createReadStream, existsSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { cacheSignature, executionOrder, OUTPUT_CLASSES, validateGraph, type Graph } from './comfy-graph.js';
import { Interrupted, NodeFailure, runNode, type NodeHost } from './comfy-nodes.js';
import { SimSockets } from './comfy-sockets.js';

export type { Graph } from './comfy-graph.js';
export { CHECKPOINTS } from './comfy-graph.js';
export { submit, txt2img } from './comfy-workflows.js';

export interface SimOptions {
  port?: number;
  /** Milliseconds per sampler step. */
  stepMs?: number;
  /** Milliseconds for a quick node. */
  nodeMs?: number;
  /** '0.3.64' routes progress_state to the submitter only; '0.3.50' broadcasts it. */
  version?: string;
  /** Behave as if the podscope tap node (v2) were installed: report prompts, nodes and outcomes to `podscope-` sockets, answer /podscope/tap. */
  tap?: boolean;
  /** Send a binary preview after each sampler step. */
  previews?: boolean;
  /** Serve the newer Jobs API (`/api/jobs`), as ComfyUI does since PR #11054. */
  jobsApi?: boolean;
  outputDir?: string;
  tempDir?: string;
  /** Run as ComfyUI started with `--cuda-device N` (one instance per GPU): its argv says so. */
  cudaDevice?: number;
  /** Called with every log line the simulated ComfyUI prints (to feed a log file, say). */
  onLog?: (line: string) => void;
}

interface Task {
  number: number;
  promptId: string;
  graph: Graph;
  extra: Record<string, unknown>;
  outputs: string[];
}

interface HistoryEntry {
  prompt: [number, string, Graph, Record<string, unknown>, string[]];
  outputs: Record<string, Record<string, unknown>>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
  meta: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


export class SimComfyUI {
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  /** Its websockets and log stream, with ComfyUI's delivery rules. */
  readonly ws: SimSockets;
  private readonly httpSockets = new Set<Socket>();
  private queue: Task[] = [];
  private running: Task | null = null;
  private history = new Map<string, HistoryEntry>();
  private cache = new Map<string, Record<string, unknown> | null>();
  private counter = 0;
  private fileCounter = 0;
  private interruptFlag = false;
  private worker: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private stopped = false;
  port = 0;
  readonly opts: Required<Omit<SimOptions, 'port' | 'onLog' | 'outputDir' | 'tempDir' | 'cudaDevice'>> & SimOptions;
  /** Requests by path (with the query), for tests that check what a client asked. */
  readonly requests: string[] = [];
  /** Answer HTTP with this status instead (fault injection), or 'hang' to never answer. */
  httpFault: { paths: RegExp; status: number | 'hang' | 'garbage' } | null = null;

  constructor(opts: SimOptions = {}) {
    this.opts = { stepMs: 30, nodeMs: 5, version: '0.3.64', tap: false, previews: false, jobsApi: false, ...opts };
    this.ws = new SimSockets({ queueRemaining: () => this.queueRemaining(), onLog: opts.onLog });
  }

  /** Every clientId any socket connected with, in order (a test proves podscope never used a submitter's). */
  get connectedClientIds(): readonly string[] {
    return this.ws.connectedClientIds;
  }

  /** The clientIds subscribed to the log stream. */
  subscriberIds(): string[] {
    return [...this.ws.subscribed];
  }

  /** Send a raw frame to every socket (fault injection: unknown types, garbage, huge frames). */
  broadcastRaw(payload: string | Buffer): void {
    this.ws.broadcastRaw(payload);
  }

  /** Every websocket goes silent without closing (no frames, no pongs), like a frozen process. */
  silence(on = true): void {
    this.ws.silence(on);
  }

  /** One write to stdout/stderr as ComfyUI's LogInterceptor sees it. */
  log(m: string): void {
    this.ws.log(m);
  }

  private send(type: string, data: Record<string, unknown>, sid: string | null): void {
    this.ws.send(type, data, sid);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<string> {
    this.stopped = false;
    if (this.opts.outputDir) mkdirSync(this.opts.outputDir, { recursive: true });
    if (this.opts.tempDir) {
      rmSync(this.opts.tempDir, { recursive: true, force: true }); // ComfyUI wipes temp at start
      mkdirSync(this.opts.tempDir, { recursive: true });
    }
    const server = createServer((req, res) => void this.route(req, res));
    server.on('connection', (s) => {
      this.httpSockets.add(s);
      s.on('close', () => this.httpSockets.delete(s));
    });
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/ws' && url.pathname !== '/api/ws') {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.ws.accept(ws, url.searchParams.get('clientId')));
    });
    await new Promise<void>((res) => server.listen(this.opts.port ?? this.port ?? 0, '127.0.0.1', res));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.wss = wss;
    this.log('Starting server\n');
    this.log(`To see the GUI go to: http://127.0.0.1:${this.port}\n`);
    this.worker = this.work();
    return this.url;
  }

  /** Stops the process: every socket closed, the worker ended. History and queue are kept (use restart to lose them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.interruptFlag = true;
    this.wake?.();
    this.ws.terminateAll();
    this.wss?.close();
    for (const s of this.httpSockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.server = null;
    await this.worker;
  }

  /** A process restart: down for `downMs`, then up on the same port with empty queue, history and cache. */
  async restart(downMs = 200): Promise<void> {
    const port = this.port;
    await this.stop();
    this.queue = [];
    this.running = null;
    this.history.clear();
    this.cache.clear();
    this.ws.reset();
    this.interruptFlag = false;
    await sleep(downMs);
    this.opts.port = port;
    await this.start();
  }

  /**
   * An execution event as the prompt's submitter gets it (`executing` and `executed` only when it
   * has a client_id, as ComfyUI does), plus the tap's copy to podscope: the executor's events for
   * every prompt, the submitter's progress and outputs, never `executing`.
   */
  private exec(type: string, data: Record<string, unknown>, task: Task, broadcastWithoutClient = false): void {
    const clientId = typeof task.extra.client_id === 'string' ? task.extra.client_id : null;
    if (clientId !== null) this.send(type, data, clientId);
    else if (broadcastWithoutClient) this.send(type, data, null);
    if (this.opts.tap && type !== 'executing' && !(clientId === null && broadcastWithoutClient)) {
      if (clientId !== null || type.startsWith('execution_')) this.tapEmit(type, data, clientId);
    }
  }

  /** What the tap node sends podscope's sockets. */
  private tapEmit(type: string, data: Record<string, unknown>, except: string | null = null): void {
    if (!this.opts.tap) return;
    for (const [sid] of this.ws.byId) if (sid.startsWith('podscope') && sid !== except) this.send(type, data, sid);
  }

  /** extra_data as the tap reports it: scalars whose names are not secrets. */
  private static tapExtra(extra: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(Object.entries(extra).filter(([k, v]) => !/KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE/i.test(k) && (v === null || ['string', 'number', 'boolean'].includes(typeof v))));
  }

  private queueRemaining(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  private statusFrame(): void {
    this.send('status', { status: { exec_info: { queue_remaining: this.queueRemaining() } } }, null);
  }

  // ---- HTTP --------------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    let path = url.pathname;
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (this.requests.length > 10_000) this.requests.splice(0, 5000);
    if (this.httpFault && this.httpFault.paths.test(path)) {
      const s = this.httpFault.status;
      if (s === 'hang') return; // never answers
      if (s === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"queue_running": [[1, "x"');
      return void res.writeHead(s).end('Internal Server Error');
    }
    if (path.startsWith('/api/') && !path.startsWith('/api/jobs')) path = path.slice(4);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const body = async (): Promise<unknown> => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      return text ? JSON.parse(text) : {};
    };
    try {
      if (req.method === 'GET' && path === '/queue') {
        return json(200, {
          queue_running: this.running ? [this.item(this.running)] : [],
          // Heap order, not sorted: reversed here so clients must sort.
          queue_pending: [...this.queue].reverse().map((t) => this.item(t)),
        });
      }
      if (req.method === 'GET' && path === '/prompt') return json(200, { exec_info: { queue_remaining: this.queueRemaining() } });
      if (req.method === 'POST' && path === '/prompt') return this.postPrompt((await body()) as Record<string, unknown>, json);
      if (req.method === 'GET' && path === '/history') {
        const max = Number(url.searchParams.get('max_items') ?? 0);
        const entries = [...this.history.entries()];
        return json(200, Object.fromEntries(max > 0 ? entries.slice(-max) : entries));
      }
      if (req.method === 'GET' && path.startsWith('/history/')) {
        const id = decodeURIComponent(path.slice('/history/'.length));
        const h = this.history.get(id);
        return json(200, h ? { [id]: h } : {});
      }
      if (req.method === 'POST' && path === '/interrupt') {
        const b = (await body()) as { prompt_id?: string };
        if (!b.prompt_id || b.prompt_id === this.running?.promptId) {
          this.interruptFlag = true;
          this.log(b.prompt_id ? `Interrupting prompt ${b.prompt_id}\n` : 'Global interrupt (no prompt_id specified)\n');
        } else {
          this.log(`Prompt ${b.prompt_id} is not currently running, skipping interrupt\n`);
        }
        return json(200, {});
      }
      if (req.method === 'POST' && path === '/queue') {
        const b = (await body()) as { clear?: boolean; delete?: string[] };
        if (b.clear) this.queue = [];
        if (Array.isArray(b.delete)) this.queue = this.queue.filter((t) => !b.delete!.includes(t.promptId));
        this.statusFrame();
        return json(200, {});
      }
      if (req.method === 'GET' && path === '/system_stats') return json(200, this.systemStats());
      if (req.method === 'GET' && path === '/api/jobs' && this.opts.jobsApi) return json(200, this.jobs(url));
      if (req.method === 'GET' && path === '/internal/logs/raw') return json(200, { entries: this.ws.logBuffer, size: { cols: 80, rows: 24 } });
      if (req.method === 'PATCH' && path === '/internal/logs/subscribe') {
        const b = (await body()) as { clientId?: string; enabled?: boolean };
        if (typeof b.clientId === 'string') {
          if (b.enabled) this.ws.subscribed.add(b.clientId);
          else this.ws.subscribed.delete(b.clientId);
        }
        return json(200, {});
      }
      // aiohttp answers HEAD on every GET route, as ComfyUI's /view does.
      if ((req.method === 'GET' || req.method === 'HEAD') && path === '/view') return this.view(url, res, req.method === 'HEAD');
      if (req.method === 'GET' && path === '/podscope/tap' && this.opts.tap) {
        const hooks = { send_sync: true, add_message: true, execute_async: true, execute: true, validate_prompt: true };
        return json(200, { tap: true, version: '2', client_prefix: 'podscope-', sent: 0, dropped: 0, errors: 0, hooks });
      }
      if (req.method === 'GET' && path === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>ComfyUI (simulated)</html>');
      json(404, { error: 'not found' });
    } catch {
      json(400, { error: 'bad request' });
    }
  }

  /** GET /api/jobs: queue and history as ComfyUI's Jobs API lists them, newest first. */
  private jobs(url: URL) {
    const wanted = new Set((url.searchParams.get('status') ?? 'pending,in_progress,completed,failed,cancelled').split(','));
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const all: Array<Record<string, unknown>> = [];
    for (const t of this.queue) all.push({ id: t.promptId, status: 'pending', priority: t.number, create_time: null });
    if (this.running) all.push({ id: this.running.promptId, status: 'in_progress', priority: this.running.number, create_time: null });
    for (const [id, h] of this.history) {
      const msgs = h.status.messages;
      const end = msgs.find(([m]) => m === 'execution_success' || m === 'execution_error' || m === 'execution_interrupted');
      const status = end?.[0] === 'execution_success' ? 'completed' : end?.[0] === 'execution_interrupted' ? 'cancelled' : 'failed';
      all.push({ id, status, priority: h.prompt[0], create_time: null, execution_start_time: msgs[0]?.[1].timestamp ?? null, execution_end_time: end?.[1].timestamp ?? null, outputs_count: Object.keys(h.outputs).length });
    }
    const jobs = all.filter((j) => wanted.has(String(j.status))).reverse();
    return { jobs: jobs.slice(0, limit), pagination: { offset: 0, limit, total: jobs.length, has_more: jobs.length > limit } };
  }

  private item(t: Task): unknown[] {
    return [t.number, t.promptId, t.graph, t.extra, t.outputs];
  }

  private systemStats() {
    return {
      system: {
        os: 'posix',
        ram_total: 270_000_000_000,
        ram_free: 200_000_000_000,
        comfyui_version: this.opts.version,
        python_version: '3.12.3 (main, Jan 1 2025, 00:00:00) [GCC 13.2.0]',
        pytorch_version: '2.8.0+cu128',
        embedded_python: false,
        argv: ['main.py', '--listen', '0.0.0.0', '--port', String(this.port), ...(this.opts.cudaDevice === undefined ? [] : ['--cuda-device', String(this.opts.cudaDevice)])],
      },
      devices: [
        {
          name: 'cuda:0 NVIDIA H200 : cudaMallocAsync',
          type: 'cuda',
          index: 0,
          vram_total: 150_754_820_096,
          vram_free: this.running ? 110_000_000_000 : 148_000_000_000,
          torch_vram_total: this.running ? 30_000_000_000 : 0,
          torch_vram_free: this.running ? 2_000_000_000 : 0,
        },
      ],
    };
  }

  private view(url: URL, res: ServerResponse, head = false): void {
    const type = url.searchParams.get('type') ?? 'output';
    const dir = type === 'temp' ? this.opts.tempDir : this.opts.outputDir;
    const filename = url.searchParams.get('filename') ?? '';
    const subfolder = url.searchParams.get('subfolder') ?? '';
    if (!dir || !filename || filename.includes('..') || filename.startsWith('/')) return void res.writeHead(400).end();
    const full = resolve(dir, subfolder, filename);
    if (!full.startsWith(resolve(dir) + sep)) return void res.writeHead(403).end();
    if (!existsSync(full) || !statSync(full).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': filename.endsWith('.png') ? 'image/png' : 'application/octet-stream', 'content-length': String(statSync(full).size) });
    if (head) res.end();
    else createReadStream(full).pipe(res);
  }

  /** POST /prompt: validate, enqueue, answer like ComfyUI. */
  private postPrompt(b: Record<string, unknown>, json: (s: number, b: unknown) => void): void {
    this.log('got prompt\n');
    const graph = (b.prompt ?? {}) as Graph;
    const extra: Record<string, unknown> = { ...((b.extra_data as Record<string, unknown>) ?? {}) };
    if (typeof b.client_id === 'string') extra.client_id = b.client_id;
    const promptId = typeof b.prompt_id === 'string' ? b.prompt_id : randomUUID();
    const posted = { prompt_id: promptId, extra: SimComfyUI.tapExtra(extra), t: Date.now() };
    const errors = validateGraph(graph);
    if (errors) {
      for (const line of errors.lines) this.log(`${line}\n`);
      const body = errors.body as { error: unknown; node_errors: unknown };
      this.tapEmit('podscope.prompt_rejected', { ...posted, error: body.error, node_errors: body.node_errors });
      return json(400, errors.body);
    }
    this.tapEmit('podscope.prompt_queued', posted);
    const outputs = Object.entries(graph)
      .filter(([, n]) => OUTPUT_CLASSES.has(n.class_type))
      .map(([id]) => id);
    const number = typeof b.number === 'number' ? b.number : b.front ? -++this.counter : ++this.counter;
    this.queue.push({ number, promptId, graph, extra, outputs });
    this.queue.sort((a, c) => a.number - c.number);
    this.statusFrame();
    this.wake?.();
    json(200, { prompt_id: promptId, number, node_errors: {} });
  }

  // ---- execution ---------------------------------------------------------------------------

  private async work(): Promise<void> {
    while (!this.stopped) {
      const task = this.queue.shift();
      if (!task) {
        await new Promise<void>((res) => {
          this.wake = res;
          setTimeout(res, 200);
        });
        this.wake = null;
        continue;
      }
      this.running = task;
      this.statusFrame(); // the worker took it; still counted
      await this.execute(task);
      if (this.stopped) return; // a process that died mid-job writes no history
      this.running = null;
      this.statusFrame(); // task_done; history already written
      this.exec('executing', { node: null, prompt_id: task.promptId }, task);
    }
  }

  private async execute(task: Task): Promise<void> {
    const started = Date.now();
    const messages: Array<[string, Record<string, unknown>]> = [];
    const outputs: Record<string, Record<string, unknown>> = {};
    const clientId = typeof task.extra.client_id === 'string' ? task.extra.client_id : null;
    const order = executionOrder(task.graph, task.outputs);
    const memo = new Map<string, string>();
    const cached = order.filter((id) => this.cache.has(cacheSignature(task.graph, id, memo)));
    const progressState: Record<string, Record<string, unknown>> = {};
    const outline = Object.fromEntries(
      Object.entries(task.graph).map(([id, n]) => [
        id,
        { class_type: n.class_type, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([k, v]) => (Array.isArray(v) && v.length === 2) || (k === 'steps' && typeof v === 'number'))) },
      ]),
    );
    this.tapEmit('podscope.prompt_start', { prompt_id: task.promptId, extra: SimComfyUI.tapExtra(task.extra), graph: outline, outputs: task.outputs, t: Date.now() });
    const startMsg = { prompt_id: task.promptId, timestamp: Date.now() };
    messages.push(['execution_start', startMsg]);
    this.exec('execution_start', startMsg, task);
    const cachedMsg = { nodes: cached, prompt_id: task.promptId, timestamp: Date.now() };
    messages.push(['execution_cached', cachedMsg]);
    this.exec('execution_cached', cachedMsg, task);
    const executed: string[] = [];
    let current: string | null = null;
    const sendState = () => {
      const data = { prompt_id: task.promptId, nodes: structuredClone(progressState) };
      const broadcast = clientId === null || this.opts.version.localeCompare('0.3.57', undefined, { numeric: true }) < 0;
      if (broadcast) {
        this.send('progress_state', data, null);
      } else {
        this.send('progress_state', data, clientId);
        if (this.opts.tap) for (const [sid] of this.ws.byId) if (sid.startsWith('podscope') && sid !== clientId) this.send('progress_state', data, sid);
      }
    };
    const nodeState = (id: string, value: number, max: number, state: string) => {
      progressState[id] = { value, max, state, node_id: id, prompt_id: task.promptId, display_node_id: id, parent_node_id: null, real_node_id: id };
    };
    try {
      for (const id of order) {
        if (this.stopped) return;
        const node = task.graph[id]!;
        const sig = cacheSignature(task.graph, id, memo);
        if (cached.includes(id)) {
          const ui = this.cache.get(sig);
          if (ui) {
            outputs[id] = ui;
            nodeState(id, 1, 1, 'finished');
            sendState();
            this.exec('executed', { node: id, display_node: id, output: ui, prompt_id: task.promptId }, task);
          }
          continue;
        }
        if (this.interruptFlag) throw new Interrupted();
        current = id;
        nodeState(id, 0, 1, 'running');
        sendState();
        this.exec('executing', { node: id, display_node: id, prompt_id: task.promptId }, task);
        const tapNode = { prompt_id: task.promptId, node_id: id, display_node_id: id, class_type: node.class_type };
        this.tapEmit('podscope.node_start', { ...tapNode, t: Date.now() });
        let ui: Record<string, unknown> | null;
        try {
          ui = await runNode(this.nodeHost(task), node, (value, max) => {
            nodeState(id, value, max, 'running');
            sendState();
            this.exec('progress', { value, max, prompt_id: task.promptId, node: id }, task, true);
          });
        } catch (err) {
          if (!this.stopped) this.tapEmit('podscope.node_end', { ...tapNode, t: Date.now(), outcome: 'error' });
          throw err;
        }
        this.tapEmit('podscope.node_end', { ...tapNode, t: Date.now(), outcome: 'success' });
        nodeState(id, (progressState[id]!.max as number) ?? 1, (progressState[id]!.max as number) ?? 1, 'finished');
        sendState();
        executed.push(id);
        this.cache.set(sig, ui);
        if (ui) {
          outputs[id] = ui;
          this.exec('executed', { node: id, display_node: id, output: ui, prompt_id: task.promptId }, task);
        }
      }
      const ok = { prompt_id: task.promptId, timestamp: Date.now() };
      messages.push(['execution_success', ok]);
      this.exec('execution_success', ok, task);
      this.writeHistory(task, outputs, 'success', messages);
      this.log(`Prompt executed in ${((Date.now() - started) / 1000).toFixed(2)} seconds\n`);
    } catch (err) {
      if (this.stopped) return;
      const node = current ? task.graph[current] : undefined;
      if (err instanceof Interrupted) {
        this.interruptFlag = false;
        const data = { prompt_id: task.promptId, node_id: current, node_type: node?.class_type ?? null, executed, timestamp: Date.now() };
        messages.push(['execution_interrupted', data]);
        this.log('Processing interrupted\n');
        this.exec('execution_interrupted', data, task, true);
      } else {
        const f = err instanceof NodeFailure ? err : new NodeFailure('Exception', (err as Error).message, []);
        const data = {
          prompt_id: task.promptId,
          node_id: current,
          node_type: node?.class_type ?? null,
          executed,
          exception_message: f.message,
          exception_type: f.type,
          traceback: f.traceback,
          current_inputs: Object.fromEntries(Object.entries(node?.inputs ?? {}).map(([k, v]) => [k, [Array.isArray(v) ? '<object>' : v]])),
          current_outputs: cached,
          timestamp: Date.now(),
        };
        messages.push(['execution_error', data]);
        this.log(`!!! Exception during processing !!! ${f.message.split('\n')[0]}\n`);
        this.log(`Traceback (most recent call last):\n${f.traceback.join('')}${f.type}: ${f.message.split('\n')[0]}\n`);
        if (f.type.endsWith('OutOfMemoryError')) this.log('Got an OOM, unloading all loaded models.\n');
        this.exec('execution_error', data, task);
      }
      this.writeHistory(task, outputs, 'error', messages);
      this.log(`Prompt executed in ${((Date.now() - started) / 1000).toFixed(2)} seconds\n`);
    }
  }

  private writeHistory(task: Task, outputs: Record<string, Record<string, unknown>>, status: 'success' | 'error', messages: Array<[string, Record<string, unknown>]>): void {
    const extra = { ...task.extra };
    delete extra.api_key_comfy_org; // stripped when the prompt moves to history
    delete extra.auth_token_comfy_org;
    this.history.set(task.promptId, {
      prompt: [task.number, task.promptId, task.graph, extra, task.outputs],
      outputs,
      status: { status_str: status, completed: status === 'success', messages },
      meta: Object.fromEntries(Object.keys(outputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }])),
    });
  }

  private async tick(ms: number): Promise<void> {
    await sleep(ms);
    if (this.interruptFlag) throw new Interrupted();
    if (this.stopped) throw new Interrupted();
  }

  /** What a node of `task` may use of this server while it runs. */
  private nodeHost(task: Task): NodeHost {
    const clientId = typeof task.extra.client_id === 'string' ? task.extra.client_id : null;
    return {
      graph: task.graph,
      nodeMs: this.opts.nodeMs,
      stepMs: this.opts.stepMs,
      previews: this.opts.previews,
      tick: (ms) => this.tick(ms),
      log: (text) => this.log(text),
      preview: (frame) => this.ws.sendBinary(frame, clientId),
      writeOutput: (prefix, ext, type) => this.writeOutput(prefix, ext, type),
    };
  }

  private writeOutput(prefix: string, ext: string, type: 'output' | 'temp'): { filename: string; subfolder: string; type: string } {
    const slash = prefix.lastIndexOf('/');
    const subfolder = slash >= 0 ? prefix.slice(0, slash) : '';
    const base = slash >= 0 ? prefix.slice(slash + 1) : prefix;
    const filename = `${base}_${String(++this.fileCounter).padStart(5, '0')}_.${ext}`;
    const dir = type === 'temp' ? this.opts.tempDir : this.opts.outputDir;
    if (dir) {
      mkdirSync(join(dir, subfolder), { recursive: true });
      writeFileSync(join(dir, subfolder, filename), Buffer.from(`simulated ${ext} ${filename}`));
    }
    return { filename, subfolder, type };
  }
}

