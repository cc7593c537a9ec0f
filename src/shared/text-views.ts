/**
 * Text renderings for people with only curl (`?format=text`) and for the CLI: the same views,
 * read from the JSON shapes the endpoints answer, so both always agree.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
type J = any;

function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));

/** Whether the items come from more than one ComfyUI instance (their rows then name it). */
const several = (items: J[] | undefined) => new Set((items ?? []).map((x: J) => x?.instance)).size > 1;

/** A problem's place: its component, and the instance it is about. */
const where = (p: J) => `${p.component}${p.instance ? `[${p.instance}]` : ''}`;

function mb(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  return v >= 1024 ? `${(v / 1024).toFixed(1)} GiB` : `${v} MiB`;
}

function bar(pct: number, width = 20): string {
  const filled = Math.round((Math.max(0, Math.min(100, pct)) / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function renderStatus(s: J): string {
  const out: string[] = [];
  out.push(`pod ${s.pod_id}: ${String(s.status).toUpperCase()}    (as of ${s.sampled_at})`);
  const c = s.comfyui ?? {};
  const instances: J[] = Array.isArray(s.instances) ? s.instances : [];
  if (instances.length > 1) {
    out.push(
      table(
        instances.map((i: J) => [
          i.name,
          String(i.status),
          i.gpus === null ? '?' : i.gpus.map((g: J) => dash(g.index)).join(',') || 'cpu',
          dash(i.version),
          `${i.queue?.running ?? 0}+${i.queue?.pending ?? 0}`,
          i.current_job ? `${dash(i.current_job.job_id)} ${dash(i.current_job.progress_percent)}%` : '-',
          `${i.url}${i.tap ? ' (tap)' : ''}`,
        ]),
        ['COMFYUI', 'STATUS', 'GPU', 'VERSION', 'RUN+WAIT', 'CURRENT JOB', 'URL'],
      ),
    );
  } else {
    out.push(`ComfyUI ${dash(c.version)} at ${c.url}: http ${c.http_ok ? 'ok' : 'DOWN'}, websocket ${c.websocket ? 'connected' : 'DOWN'}${c.tap ? ', tap installed' : ''}`);
  }
  out.push(`queue: ${s.queue?.running ?? 0} running, ${s.queue?.pending ?? 0} pending`);
  out.push('');
  if (Array.isArray(s.gpus) && s.gpus.length > 0) {
    out.push(
      table(
        s.gpus.map((g: J) => [
          g.index === null ? '?' : String(g.index),
          g.never_seen ? `${g.name} (bus ${g.pci_bus_id})` : g.name,
          g.lost ? 'LOST' : g.utilization_percent === null ? 'N/A' : `${g.utilization_percent}%`,
          `${mb(g.memory_used_mb)} / ${mb(g.memory_total_mb)}`,
          g.temperature_c === null ? '-' : `${g.temperature_c}C`,
          g.power_w === null ? '-' : `${g.power_w}W${g.power_limit_w ? ` / ${g.power_limit_w}W` : ''}`,
          dash(g.pstate),
          (g.clock_event_reasons ?? []).join(',') || '-',
        ]),
        ['GPU', 'NAME', 'UTIL', 'MEMORY', 'TEMP', 'POWER', 'PSTATE', 'THROTTLE'],
      ),
    );
    for (const g of s.gpus) {
      const at = `GPU ${g.index === null ? `at ${g.pci_bus_id}` : g.index}`;
      if (g.lost) out.push(`  ${at} LOST: ${g.lost_reason}`);
      if (g.health?.verdict) out.push(`  ${at} memory: ${g.health.verdict}`);
      for (const d of g.mig_devices ?? []) {
        out.push(`  ${at} MIG ${dash(d.profile)} (GI ${dash(d.gpu_instance_id)}, CI ${dash(d.compute_instance_id)}): ${mb(d.memory_used_mb)} / ${mb(d.memory_total_mb)}, ${(d.processes ?? []).length} process(es)`);
      }
    }
  } else {
    out.push('no GPU data');
  }
  out.push('');
  const current: J[] = Array.isArray(s.current_jobs) ? s.current_jobs : s.current_job ? [s.current_job] : [];
  for (const j of current) {
    out.push(`current job ${j.job_id} (prompt ${j.prompt_id})${instances.length > 1 ? ` on ${j.instance}` : ''}`);
    out.push(`  ${bar(j.progress_percent)} ${j.progress_percent}%  running ${j.elapsed_s}s${j.gpu_seconds !== null ? `, ${j.gpu_seconds} GPU-s` : ''}`);
    if (j.current_node) {
      const p = j.current_node.progress;
      out.push(`  node ${j.current_node.node_id} ${j.current_node.class_type}${p ? ` step ${p.steps}/${p.total}` : ''}`);
    }
  }
  if (current.length === 0) out.push('no job running');
  if (Array.isArray(s.problems) && s.problems.length > 0) {
    out.push('');
    out.push('problems:');
    for (const p of s.problems) out.push(`  ${p.severity === 'warning' ? 'WARN ' : 'ERROR'} ${where(p)}/${p.code} since ${p.since}: ${p.message}`);
  }
  return `${out.join('\n')}\n`;
}

export function renderWorkflow(w: J): string {
  const out: string[] = [];
  out.push(`job ${w.job_id}  prompt ${w.prompt_id}${w.instance ? `  comfyui ${w.instance}` : ''}  ${String(w.status).toUpperCase()}`);
  out.push(`${bar(w.progress_percent)} ${w.progress_percent}%  ${w.nodes_completed}/${w.nodes_total} nodes${w.duration_s !== null ? `  ${w.duration_s}s` : ''}${w.gpu_seconds !== null && w.gpu_seconds !== undefined ? `  ${w.gpu_seconds} GPU-s` : ''}${w.peak_vram_mb ? `  peak VRAM ${mb(w.peak_vram_mb)}` : ''}`);
  out.push('');
  out.push(
    table(
      (w.nodes ?? []).map((n: J) => [
        n.node_id,
        n.class_type,
        n.status,
        n.progress ? `${n.progress.steps}/${n.progress.total}` : '-',
        n.duration_ms === null ? '-' : `${(n.duration_ms / 1000).toFixed(2)}s`,
        dash(n.title),
      ]),
      ['NODE', 'CLASS', 'STATUS', 'STEPS', 'TIME', 'TITLE'],
    ),
  );
  if (w.error) {
    out.push('');
    out.push(`error in node ${dash(w.error.node_id)} (${dash(w.error.class_type)}): ${w.error.exception_type}`);
    if (w.error.exception_message) out.push(`  ${String(w.error.exception_message).split('\n').join('\n  ')}`);
    for (const t of w.error.traceback ?? []) out.push(String(t).replace(/\n$/, ''));
  }
  if (w.lost_reason) out.push(`\nlost: ${w.lost_reason}`);
  return `${out.join('\n')}\n`;
}

export function renderQueue(q: J): string {
  const many = several([...(q.running ?? []), ...(q.pending ?? [])]);
  const on = (j: J) => (many ? [dash(j.instance)] : []);
  const rows = [
    ...(q.running ?? []).map((j: J) => [...on(j), 'running', '-', dash(j.job_id), j.prompt_id, dash(j.client_id), dash(j.started_at)]),
    ...(q.pending ?? []).map((j: J) => [...on(j), 'pending', String(j.position), dash(j.job_id), j.prompt_id, dash(j.client_id), dash(j.queued_at ?? j.first_seen_at)]),
  ];
  const header = [...(many ? ['COMFYUI'] : []), 'STATE', 'POS', 'JOB', 'PROMPT', 'CLIENT', 'SINCE'];
  const out = [rows.length > 0 ? table(rows, header) : 'queue empty', `queue_remaining ${q.queue_remaining} (as of ${dash(q.as_of)})`];
  if (Array.isArray(q.rejected) && q.rejected.length > 0) {
    out.push('', 'rejected prompts (HTTP 400, never queued):');
    for (const r of q.rejected) {
      const who = r.job_id ? `job ${r.job_id}` : 'a prompt';
      const reasons: string[] = Array.isArray(r.reasons) && r.reasons.length > 0 ? r.reasons : ['(reason not reported)'];
      out.push(`  ${r.at}: ${who} was rejected${several(q.rejected) ? ` by ${r.instance}` : ''}: ${reasons[0]}`, ...reasons.slice(1).map((x) => `    also: ${x}`));
    }
  }
  return `${out.join('\n')}\n`;
}

export function renderJobs(v: J): string {
  const many = several(v.jobs);
  const rows = (v.jobs ?? []).map((j: J) => [
    ...(many ? [dash(j.instance)] : []),
    dash(j.job_id),
    String(j.status),
    j.duration_s === null ? '-' : `${j.duration_s} s`,
    j.gpu_seconds === null ? '-' : String(j.gpu_seconds),
    j.peak_vram_mb === null ? '-' : `${j.peak_vram_mb} MiB`,
    dash(j.finished_at ?? j.started_at ?? j.queued_at),
    j.error ? `${j.error.exception_type}: ${j.error.message}` : (j.lost_reason ?? ''),
  ]);
  const out = [rows.length > 0 ? table(rows, [...(many ? ['COMFYUI'] : []), 'JOB', 'STATUS', 'DURATION', 'GPU-S', 'PEAK VRAM', 'AT', 'ERROR']) : 'no jobs remembered', `${v.jobs?.length ?? 0} of ${v.total} (sampled ${dash(v.sampled_at)})`];
  return `${out.join('\n')}\n`;
}

export function renderMemory(m: J): string {
  const out: string[] = [];
  for (const g of m.gpus ?? []) {
    out.push(`GPU ${g.index ?? `at ${g.pci_bus_id}`} ${g.name}: used ${mb(g.used_mb)} / ${mb(g.total_mb)}, free ${mb(g.free_mb)}, reserved ${mb(g.reserved_mb)}${g.lost ? ` LOST: ${g.lost_reason}` : ''}`);
    for (const p of g.processes ?? []) out.push(`  pid ${dash(p.pid)} ${p.name}: ${mb(p.used_mb)}`);
    for (const d of g.mig_devices ?? []) {
      out.push(`  MIG ${dash(d.profile)} GI ${dash(d.gpu_instance_id)} CI ${dash(d.compute_instance_id)}: used ${mb(d.memory_used_mb)} / ${mb(d.memory_total_mb)}`);
      for (const p of d.processes ?? []) out.push(`    pid ${dash(p.pid)} ${p.process_name}: ${mb(p.used_memory_mb)}`);
    }
    const h = g.health;
    if (h) {
      const e = h.ecc;
      out.push(`  ECC ${dash(h.ecc_mode)}: uncorrected ${dash(e.volatile_uncorrected)} now / ${dash(e.aggregate_uncorrected)} lifetime, corrected ${dash(e.volatile_corrected)} / ${dash(e.aggregate_corrected)}; retired pages ${dash(h.retired_pages.single_bit_ecc)} sbe, ${dash(h.retired_pages.double_bit_ecc)} dbe; remapped rows ${dash(h.remapped_rows.correctable)} correctable, ${dash(h.remapped_rows.uncorrectable)} uncorrectable${h.verdict ? ` — ${h.verdict}` : ''}`);
    }
  }
  if (m.comfyui) {
    for (const d of m.comfyui.devices ?? []) out.push(`ComfyUI ${d.name}: vram free ${mb(d.vram_free_mb)} of ${mb(d.vram_total_mb)}, torch reserved ${mb(d.torch_vram_reserved_mb)}`);
    out.push(`ComfyUI RAM: free ${mb(m.comfyui.ram_free_mb)} of ${mb(m.comfyui.ram_total_mb)}`);
  }
  if (m.host?.memory_mb) out.push(`host RAM: available ${mb(m.host.memory_mb.available)} of ${mb(m.host.memory_mb.total)}, swap used ${mb(m.host.memory_mb.swap_used)}`);
  for (const d of m.host?.disks ?? []) out.push(`disk ${d.role} ${d.path}: ${d.free_gb} GiB free of ${d.total_gb} GiB`);
  out.push(`podscope: rss ${dash(m.podscope?.rss_mb)} MiB, heap ${dash(m.podscope?.heap_used_mb)} MiB`);
  for (const [name, b] of Object.entries<J>(m.podscope?.buffers ?? {})) out.push(`  buffer ${name}: ${b.entries}/${b.capacity_entries} entries${b.capacity_bytes ? `, ${b.bytes}/${b.capacity_bytes} bytes` : ''}, dropped ${b.dropped}`);
  for (const p of m.timeline?.job_peaks ?? []) out.push(`job ${p.job_id} ${p.status}: peak VRAM ${mb(p.peak_vram_mb)}`);
  return `${out.join('\n')}\n`;
}

export function renderArtifacts(a: J): string {
  const items = a.artifacts ?? [];
  if (items.length === 0) return 'no artifacts\n';
  const many = several(items);
  return `${table(
    items.map((x: J) => [...(many ? [dash(x.instance)] : []), dash(x.job_id), x.kind, x.type, `${x.subfolder ? `${x.subfolder}/` : ''}${x.filename}`, x.size_bytes === null || x.size_bytes === undefined ? '-' : String(x.size_bytes), x.exists === false ? 'MISSING' : x.exists ? 'yes' : '-', x.url]),
    [...(many ? ['COMFYUI'] : []), 'JOB', 'KIND', 'TYPE', 'FILE', 'BYTES', 'EXISTS', 'URL'],
  )}\n`;
}

export function renderLogLine(l: J): string {
  return `${l.ts} ${String(l.level).toUpperCase().padEnd(5)} ${l.instance ? `${l.source}[${l.instance}]` : l.source} ${l.job_id ?? '-'} ${l.message}`;
}
