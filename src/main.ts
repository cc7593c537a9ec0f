/**
 * The composition root: config → state → collectors → HTTP server, and a clean stop on signals.
 * This is the only module that wires every layer together.
 */
import { createServer, type Server } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig, MAX_INSTANCES, type Config, type InstanceConfig, type TraceConfig } from './config.js';
import { ComfyState } from './state/comfy.js';
import { ComfyDiscovery } from './collectors/comfy-discovery.js';
import { Scrubber } from './secrets.js';
import { PENDING_BYTES, bufferedStdout, componentLogger, createLogger, watchStdout, type LineSink, type Logger } from './logger.js';
import { PodState } from './state/pod.js';
import type { Instances } from './state/instances.js';
import type { HealthBoard } from './state/health.js';
import type { ReadonlyJob } from './shared/job-types.js';
import { createCoreMetrics } from './metrics/registry.js';
import { registerGpuMetrics } from './metrics/gpu.js';
import { GpuCollector } from './collectors/gpu.js';
import { HostCollector } from './collectors/host.js';
import { EventCollector } from './collectors/events.js';
import { registerEventMetrics } from './metrics/events.js';
import { TraceCollector } from './collectors/traces.js';
import { registerTraceMetrics } from './metrics/traces.js';
import type { Attributes } from './shared/traces.js';
import { redactUrlCredentials } from './secrets.js';
import { iso } from './format.js';
import { ComfyCollector, type RawInput } from './collectors/comfyui.js';
import { registerComfyMetrics } from './metrics/comfyui.js';
import { registerLogMetrics } from './metrics/logs.js';
import { registerArtifactMetrics } from './metrics/artifacts.js';
import { registerHostMetrics } from './metrics/host.js';
import { LogCollector, type LogOrigin } from './collectors/logs.js';
import { ArtifactCollector, ArtifactFileService } from './collectors/artifacts.js';
import { attributionStep, FinishPipeline, forensicsStep, xidStep } from './finish/pipeline.js';
import type { Collector } from './collectors/collector.js';
import { ProblemJournal } from './collectors/problems.js';
import { createHttpHandler } from './http/app.js';
import { loadWebAssets } from './sources/web-assets.js';
import { answerClientError } from './http/client-errors.js';
import { VERSION } from './version.js';

export interface Podscope {
  config: Config;
  state: PodState;
  logger: Logger;
  server: Server;
  /** The port actually bound (useful with PODSCOPE_PORT=0). */
  port: number;
  /** Stops collectors and the server; resolves when both are down. */
  close(): Promise<void>;
}

export interface StartOptions {
  env: Record<string, string | undefined>;
  /** Extra log sinks (tests); stdout is always one unless `sinks` replaces it. */
  sinks?: LineSink[];
  /** Receives every raw frame and HTTP answer from each ComfyUI instance (the conformance suite records them). */
  recordComfy?: (raw: RawInput, instance: string) => void;
  /** Told of every ComfyUI log record as each origin delivers it, before copies are merged (the conformance suite). */
  recordLogs?: (origin: LogOrigin, text: string, instance: string) => void;
  /**
   * Runs on the built state before any collector starts (the soak fills every buffer here, so it
   * measures a pod that has run for hours).
   */
  beforeCollectors?: (state: PodState, config: Config) => void;
}

/** Builds and starts podscope. Throws ConfigError on a bad environment. */
export async function startPodscope(opts: StartOptions): Promise<Podscope> {
  const config = loadConfig(opts.env);
  const scrubber = Scrubber.fromEnv(opts.env, [config.token]);
  // podscope's own records also go to the log buffer, once its collector exists.
  let ownRecords: LineSink | null = null;
  const bufferSink: LineSink = { write: (line) => ownRecords?.write(line), acceptsAccess: false };
  const stdout = bufferedStdout();
  const logger = createLogger({ level: config.logLevel, podId: config.podId, environment: config.env, scrubber, sinks: [...(opts.sinks ?? [stdout]), bufferSink] });

  // The state, every part of it, before anything writes to it.
  const state = new PodState({ config, version: VERSION, scrubber, env: opts.env });
  const { health, instances, gpu: gpuState, host: hostState, logs, artifacts: ledger, events: journal } = state;

  // A stdout nobody reads is a problem on-call should see; what podscope logs meanwhile stays in
  // the log buffer (access lines aside).
  const stdoutLog = componentLogger(logger, 'log');
  stdout.watch({
    stalled: () =>
      health.raise(
        'podscope',
        'STDOUT_BLOCKED',
        `stdout is not taking log lines: ${PENDING_BYTES / 1024 / 1024} MiB of them wait to be written, and the lines after them are dropped from stdout until its reader catches up; podscope's own lines stay in /debug/logs`,
        'warning',
      ),
    resumed: (dropped) => {
      health.clear('podscope', 'STDOUT_BLOCKED');
      stdoutLog.warn({ data: { dropped_lines: dropped } }, `stdout takes log lines again; ${dropped} lines were dropped from it meanwhile`);
    },
  });

  // Metrics: every family reads the state at scrape time; finished jobs are counted by the pipeline.
  const metrics = createCoreMetrics({ version: VERSION, health });
  const gpuMetrics = gpuState ? registerGpuMetrics(metrics.registry, gpuState) : null;
  registerHostMetrics(metrics.registry, hostState);
  const jobMetrics = registerComfyMetrics(metrics.registry, instances);
  registerLogMetrics(metrics.registry, logs, stdout);
  const oomMetrics = registerArtifactMetrics(metrics.registry, ledger);
  registerEventMetrics(metrics.registry, journal);

  // The pod's own collectors, each handed the parts it writes.
  const problems = new ProblemJournal({ health, logger: componentLogger(logger, 'problems'), remindMs: config.problemRemindS * 1000 });
  const gpu = gpuState
    ? new GpuCollector({
        bin: config.nvidiaSmi,
        intervalMs: config.gpuIntervalMs,
        timeoutMs: config.gpuTimeoutMs,
        appsIntervalMs: config.gpuAppsIntervalMs,
        healthIntervalMs: config.gpuHealthIntervalMs,
        state: gpuState,
        health,
        logger: componentLogger(logger, 'gpu'),
        onRun: gpuMetrics?.onRun,
        nvml: config.gpuBackend === 'nvidia-smi' ? null : { library: config.nvmlLibrary, fastMs: config.gpuFastMs, required: config.gpuBackend === 'nvml', crosscheckMs: config.gpuCrosscheckS * 1000 },
      })
    : null;
  // Each output directory given, once, with the instances that write there.
  const outputDirs = new Map<string, string[]>();
  for (const i of config.instances) if (i.outputDir) outputDirs.set(i.outputDir, [...(outputDirs.get(i.outputDir) ?? []), i.name]);
  const host = new HostCollector({ health, outputDirs: [...outputDirs].map(([path, names]) => ({ path, instances: names })), workspaceDir: config.workspaceDir, state: hostState });
  const events = new EventCollector({
    journal,
    instances,
    health,
    gpu: gpuState,
    gpuIntervalMs: config.gpuIntervalMs,
    onXid: (listener) => gpuState?.onXid(listener),
    // The jobs an Xid may have hit: those running on an instance that uses that GPU.
    jobsOnGpu: (uuid) =>
      instances
        .runningJobs()
        .filter(({ comfy }) => {
          const scope = state.gpuUse.scopeOf(comfy.name);
          return scope === undefined || (scope !== null && uuid !== null && scope.has(uuid));
        })
        .map((f) => f.job),
  });
  // Job traces over OTLP, only when an endpoint is set: otherwise OpenTelemetry is never loaded.
  const traces = config.traces ? await traceExport(config.traces, () => podResource(config.podId, gpuState?.readings().map((g) => g.name) ?? [], instances.first.version), instances, health, scrubber, componentLogger(logger, 'traces')) : null;
  if (traces) registerTraceMetrics(metrics.registry, traces.sink.stats);

  // Each ComfyUI instance is followed by collectors of its own, which write its state and the
  // shared buffers (lines, outputs) under its name, and raise its problems in its scope.
  const follow = (instance: InstanceConfig) => {
    const comfyState = instances.byName(instance.name)!;
    const scoped = health.scope(instance.name);
    const named = { instance: instance.name };
    const comfy = new ComfyCollector({ config, comfy: comfyState, health: scoped, now: state.now, logger: componentLogger(logger, 'comfyui', named), onRaw: opts.recordComfy && ((raw) => opts.recordComfy!(raw, instance.name)) });
    const logCollector = new LogCollector({ logFile: instance.logFile, store: logs, comfy: comfyState, health: scoped, scrubber, onRecord: opts.recordLogs && ((origin, text) => opts.recordLogs!(origin, text, instance.name)) });
    comfy.onLogEntries((entries) => logCollector.ingestComfy(entries));
    const files = { dirs: () => ({ outputDir: instance.outputDir, tempDir: instance.tempDir, argv: comfyState.argv }), comfyuiUrl: comfyState.url };
    const artifacts = new ArtifactCollector({ ledger, instance: instance.name, ...files });
    comfy.onRestart((at) => artifacts.comfyRestarted(at));

    // What happens when one of its jobs ends, in this order: each step reads what the ones before it wrote.
    const finish = new FinishPipeline(
      [
        attributionStep(comfyState, state.gpuUse),
        { name: 'charge it the log lines of its run', run: (job) => logCollector.jobFinished(job) },
        forensicsStep(comfyState, { gpu: gpuState, logs }, state.now, state.gpuUse),
        xidStep(comfyState, state.gpuUse, state.now),
        { name: 'log its end', run: (job) => comfy.jobFinished(job) },
        { name: 'record its outputs', run: (job) => artifacts.jobFinished(job) },
        { name: 'count it in metrics', run: (job, refined) => (jobMetrics.jobFinished(job, refined), oomMetrics.jobFinished(job, refined)) },
        { name: 'tell event followers', run: (job, refined) => events.jobFinished(job, refined) },
        ...(traces ? [{ name: 'export its trace', run: (job: ReadonlyJob, refined: boolean) => traces.collector.jobFinished(job, refined) }] : []),
      ],
      (step, job, err) => logger.error({ job_id: job.job_id, instance: job.instance, error: err }, `finishing job ${job.job_id}: the step "${step}" failed`),
    );
    comfyState.tracker.finishWith(finish.run);
    return { name: instance.name, comfy, logCollector, artifacts, files, collectors: [comfy, logCollector, artifacts] as Collector[] };
  };
  const followers = config.instances.map(follow);
  const abort = new AbortController();
  // A ComfyUI found on a probed port: followed like a configured one from then on, never dropped.
  const discovery = config.discover
    ? new ComfyDiscovery({
        from: config.discover.from,
        to: config.discover.to,
        intervalMs: config.discover.intervalMs,
        timeoutMs: config.comfyuiTimeoutMs,
        health,
        followed: () => instances.all.map((c) => c.url),
        found: (port) => {
          if (instances.all.length >= MAX_INSTANCES) return;
          const name = instances.byName(String(port)) ? `comfyui-${port}` : String(port);
          const instance = { name, url: `http://127.0.0.1:${port}`, logFile: undefined, outputDir: undefined, tempDir: undefined, ...config.discover!.files[name] };
          instances.add(new ComfyState(instance.url, { name, jobIdKey: config.jobIdKey, historyLimit: config.jobHistory }));
          const f = follow(instance);
          followers.push(f);
          for (const c of f.collectors) c.start(abort.signal);
          logger.info({ data: { instance: name, url: instance.url } }, `found ComfyUI ${name} at ${instance.url}; following it`);
        },
      })
    : null;
  // podscope's own records go to the log buffer through the first instance's log collector (they carry no instance).
  ownRecords = followers[0]!.logCollector.podscopeSink();

  const http = createHttpHandler({
    state,
    logger: componentLogger(logger, 'http'),
    metrics,
    assets: loadWebAssets(),
    services: {
      downloads: new ArtifactFileService((name) => followers.find((f) => f.name === name)?.files),
      eventStreams: journal.streams,
      connections: () => ({
        ...(gpu ? { nvidia_smi: gpu.describe() } : {}),
        comfyui: followers.length === 1 ? followers[0]!.comfy.describe() : Object.fromEntries(followers.map((f) => [f.name, f.comfy.describe()])),
        logs: followers.length === 1 ? followers[0]!.logCollector.describe() : Object.fromEntries(followers.map((f) => [f.name, f.logCollector.describe()])),
        ...(traces ? { otlp: traces.describe() } : {}),
      }),
    },
  });
  opts.beforeCollectors?.(state, config);
  const collectors: Collector[] = [problems, ...(gpu ? [gpu] : []), host, ...followers.flatMap((f) => f.collectors), events, ...(traces ? [traces.collector] : []), ...(discovery ? [discovery] : [])];
  for (const c of collectors) c.start(abort.signal);

  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(http.listener);
    s.once('error', reject);
    s.listen(config.port, config.host, () => resolve(s));
  });
  server.on('clientError', answerClientError);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ data: { host: config.host, port, version: VERSION, comfyui: config.instances.map((i) => ({ name: i.name, url: redactUrlCredentials(i.url) })), gpu: config.gpuEnabled } }, `podscope listening on ${config.host}:${port}`);
  if (config.token === undefined) {
    logger.warn('PODSCOPE_TOKEN is not set: /debug/* and /metrics answer only direct loopback clients');
  }

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      abort.abort();
      http.endStreams();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Streams (log follow) and slow clients get a moment to finish, then are cut.
      const cut = setTimeout(() => server.closeAllConnections(), 1000);
      cut.unref();
      // The instances discovery added while podscope ran stop too.
      await Promise.allSettled([...collectors, ...followers.slice(config.instances.length).flatMap((f) => f.collectors)].map((c) => c.stop()));
      await serverClosed;
      clearTimeout(cut);
    })());

  return { config, state, logger, server, port, close };
}

/** The OTLP trace export: the sink (OpenTelemetry, imported only here), its collector, and what /debug/connections shows of it. */
async function traceExport(config: TraceConfig, resource: () => Attributes, instances: Instances, health: HealthBoard, scrubber: Scrubber, traceLogger: Logger) {
  const { createOtlpTraceSink } = await import('./sources/otlp.js');
  const sink = createOtlpTraceSink({
    config,
    version: VERSION,
    resource,
    onExportState: (ok, message) =>
      ok ? traceLogger.info('trace export works again') : traceLogger.warn({ data: { url: redactUrlCredentials(config.url) } }, `trace export failing: ${message}`),
  });
  return {
    sink,
    collector: new TraceCollector({ sink, instances, health, scrubber }),
    describe: () => {
      const s = sink.stats();
      return { ...s, last_success_at: iso(s.last_success_at), last_error_at: iso(s.last_error_at) };
    },
  };
}

/** What a job's trace says of the pod it ran on: the pod id, its GPUs, ComfyUI's version. */
function podResource(podId: string, gpuNames: string[], comfyVersion: string | null): Attributes {
  const attrs: Attributes = { 'service.instance.id': podId, 'runpod.pod.id': podId };
  if (gpuNames.length) {
    attrs['podscope.gpu.count'] = gpuNames.length;
    attrs['podscope.gpu.name'] = [...new Set(gpuNames)].join(', ');
  }
  if (comfyVersion) attrs['service.version'] = comfyVersion;
  return attrs;
}

/**
 * How far V8 lets the old generation grow past what the last full collection kept, in percent.
 * V8's own factor (up to 4×) let podscope's resident set swing to 150 MB under load for a live
 * heap of 35 MB; at 25 % it stayed within 110–120 MB for about 4 % more CPU (bench/results.md).
 * Set at run time: an unknown flag there is ignored, where one on the command line stops Node.
 */
const HEAP_GROWING_PERCENT = 25;

/**
 * Tunes V8's heap for a long-running podscope (the server, and the bench's stand-in for it). A
 * `--heap-growing-percent` given to Node itself wins (0 is V8's own factor).
 */
export function tuneHeap(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--heap-growing-percent'));
  if (!given) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** The exit status of a podscope stopped by an error nothing caught (EX_SOFTWARE). */
export const EXIT_UNCAUGHT = 70;

/**
 * The last resort, once podscope runs: an error nothing caught, or a promise rejection nothing
 * handled, is logged as one fatal JSON line, scrubbed like every other line (Node itself would
 * print the raw stack on stderr), and podscope exits 70 for its supervisor to start it again:
 * state after an error nobody expected cannot be trusted.
 */
function stopOnUncaught(logger: Logger): void {
  const stop = (err: unknown, what: string) => {
    try {
      logger.fatal({ error: err }, `podscope stops: ${what}`);
    } finally {
      process.exit(EXIT_UNCAUGHT);
    }
  };
  process.on('uncaughtException', (err) => stop(err, 'an error nothing caught'));
  process.on('unhandledRejection', (reason) => stop(reason, 'a promise rejection nothing handled'));
}

/** `podscope serve`: start, and stop cleanly on SIGTERM or SIGINT within five seconds. */
export async function runServe(env: Record<string, string | undefined>, opts: Omit<StartOptions, 'env'> = {}): Promise<number> {
  tuneHeap();
  // A stdout that fails is said once and lived with, whatever the log level (see watchStdout).
  watchStdout();
  // Signals are caught from the first moment, so one that arrives during start-up still ends cleanly.
  let signalled: NodeJS.Signals | null = null;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
    signalled = signal;
  };
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);

  let pod: Podscope;
  try {
    pod = await startPodscope({ ...opts, env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`podscope: invalid configuration: ${err.message}\n`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`podscope: cannot start: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.message}\n`);
    return 1;
  }
  stopOnUncaught(pod.logger);
  return new Promise<number>((resolve) => {
    onSignal = (signal) => {
      pod.logger.info({ data: { signal } }, `received ${signal}, shutting down`);
      const hard = setTimeout(() => {
        pod.logger.error('shutdown took longer than 4.5 s; exiting anyway');
        resolve(0);
      }, 4500);
      hard.unref();
      void pod.close().then(() => {
        clearTimeout(hard);
        pod.logger.info('podscope stopped');
        resolve(0);
      });
    };
    if (signalled) onSignal(signalled);
  });
}
