// podscope's page: the pod at a glance, kept live by /debug/events. Plain browser JavaScript, no
// build step; every value is written as text (never as HTML), and nothing is fetched from
// another host.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const WINDOW_S = 600;

  /** An element with attributes and children (strings become text). */
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const dash = (v, unit = '') => (v === null || v === undefined ? '–' : `${v}${unit}`);
  /** A time as the API gives it, in UTC; the local time on hover. */
  const time = (iso) => (iso ? el('time', { datetime: iso, title: `${new Date(iso).toLocaleString()} (local)` }, `${iso.slice(11, 19)} UTC`) : '–');
  const badge = (word) => el('span', { class: `badge ${word}` }, word);

  /** A JSON answer; null for a 404 when `missingOk`. A lapsed session goes back to the login page. */
  async function get(path, missingOk = false) {
    const res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    if (res.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      throw new Error('logged out');
    }
    if (res.status === 404 && missingOk) return null;
    const body = await res.json();
    if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
    return body;
  }

  /** Runs `fn` at most once per `ms`, the last call always honoured. */
  function throttle(fn, ms) {
    let timer = null;
    let again = false;
    return () => {
      if (timer) {
        again = true;
        return;
      }
      fn();
      timer = setTimeout(() => {
        timer = null;
        if (again) {
          again = false;
          fn();
        }
      }, ms);
    };
  }

  const report = (where) => (err) => {
    if (err.message !== 'logged out') $('live').textContent = `${where}: ${err.message}`;
  };

  // ── the pod ──────────────────────────────────────────────────────────────────────────────
  async function loadStatus() {
    const s = await get('/debug/status');
    $('pod-id').textContent = s.pod_id;
    document.title = `podscope · ${s.pod_id} · ${s.status}`;
    const st = $('pod-status');
    st.textContent = s.status;
    st.className = `badge ${s.status}`;
    $('problems').replaceChildren(...s.problems.map((p) => el('li', { class: p.severity }, `${p.component}${p.instance ? ` ${p.instance}` : ''} ${p.code}: ${p.message} (since `, time(p.since), ')')));
    renderInstances(s.instances ?? []);
    renderGpus(s.gpus);
  }

  // ── the ComfyUI instances: a row each, and the filter the sections below follow ─────────────
  /** The instance the job, queue, jobs and log sections show; '' for every one. */
  let instance = '';
  const only = (sep) => (instance ? `${sep}instance=${encodeURIComponent(instance)}` : '');

  function renderInstances(list) {
    $('instances').replaceChildren(
      el(
        'table',
        {},
        el('tr', {}, ['instance', 'status', 'GPU', 'queue', 'running job', 'ComfyUI'].map((h) => el('th', {}, h))),
        list.map((i) =>
          el(
            'tr',
            { 'data-instance': i.name },
            el('td', {}, i.name),
            el('td', {}, badge(i.status)),
            el('td', { title: i.gpus === null ? i.gpus_unknown_reason : `from ${i.gpus_source}` }, i.gpus === null ? 'unknown' : i.gpus.length === 0 ? 'none (CPU)' : i.gpus.map((g) => `GPU ${dash(g.index)}`).join(', ')),
            el('td', { class: 'num' }, `${i.queue.running} running, ${i.queue.pending} waiting`),
            el('td', {}, i.current_job ? `${i.current_job.job_id ?? i.current_job.prompt_id} · ${dash(i.current_job.progress_percent, ' %')}` : '–'),
            el('td', {}, `${dash(i.version)}${i.tap ? ' · tap' : ''} · ${i.url}`),
          ),
        ),
      ),
    );
    // The filter offers every instance; one chosen before it was listed stays chosen.
    const select = $('instance');
    const names = list.map((i) => i.name);
    const offered = [...select.options].slice(1).map((o) => o.value);
    if (names.join('\n') !== offered.join('\n')) {
      select.replaceChildren(el('option', { value: '' }, 'every instance'), ...names.map((n) => el('option', { value: n }, n)));
      select.value = names.includes(instance) ? instance : '';
    }
  }

  // ── GPUs: a card each, with the last ten minutes as charts ──────────────────────────────
  const SERIES = [
    { key: 'utilization_percent', label: 'utilization', unit: ' %', axisUnit: '%', of: (p) => p.utilization_percent },
    { key: 'vram', label: 'VRAM', unit: ' MiB', axisUnit: '', of: (p) => p.used_max_mb ?? p.used_mb },
    { key: 'temperature_c', label: 'temperature', unit: ' °C', axisUnit: '°', of: (p) => p.temperature_c },
    { key: 'power_w', label: 'power', unit: ' W', axisUnit: ' W', of: (p) => p.power_w },
  ];
  /** An axis value in few characters: 35000 as 35k. */
  const compact = (v) => (Math.abs(v) >= 10_000 ? `${Math.round(v / 1000)}k` : String(v));
  const charts = new Map(); // uuid → { card, values: Map<key, element>, plots: Map<key, {plot, data}> }
  const history = new Map(); // uuid → { t: [], [key]: [] }

  function pushPoint(uuid, t, point) {
    let h = history.get(uuid);
    if (!h) history.set(uuid, (h = { t: [], ...Object.fromEntries(SERIES.map((s) => [s.key, []])) }));
    if (h.t.length > 0 && t <= h.t[h.t.length - 1]) return;
    h.t.push(t);
    for (const s of SERIES) h[s.key].push(s.of(point));
    while (h.t.length > 0 && h.t[0] < t - WINDOW_S) {
      h.t.shift();
      for (const s of SERIES) h[s.key].shift();
    }
  }

  function renderGpus(gpus) {
    const box = $('gpus');
    if (gpus.length === 0 && charts.size === 0) {
      box.replaceChildren(el('p', { class: 'muted' }, 'No GPU is sampled on this pod.'));
      return;
    }
    for (const g of gpus) {
      const id = g.uuid ?? g.pci_bus_id ?? String(g.index);
      let c = charts.get(id);
      if (!c) {
        const values = new Map();
        const plots = new Map();
        const rows = SERIES.map((s) => {
          const v = el('span', { class: 'v' });
          const holder = el('div', { class: 'chart', 'data-series': s.key });
          values.set(s.key, v);
          plots.set(s.key, { holder, plot: null });
          return el('div', { class: 'metric' }, el('div', { class: 'label' }, el('span', {}, s.label), v), holder);
        });
        const card = el('article', { class: 'card gpu', 'data-uuid': id }, el('h3', {}), ...rows);
        box.append(card);
        c = { card, values, plots };
        charts.set(id, c);
        if (box.firstChild && box.firstChild.tagName === 'P') box.firstChild.remove();
      }
      c.card.classList.toggle('lost', g.lost);
      c.card.querySelector('h3').textContent = `GPU ${dash(g.index)} · ${g.name}${g.lost ? ` · lost: ${g.lost_reason}` : ''}`;
      const vram = g.memory_used_mb === null ? null : `${g.memory_used_mb} / ${dash(g.memory_total_mb)}`;
      // A reading podscope does not have says why, on hover.
      for (const s of SERIES) c.values.get(s.key).title = (g.null_reasons ?? {})[s.key === 'vram' ? 'memory_used_mb' : s.key] ?? '';
      const shown = { utilization_percent: g.utilization_percent, vram, temperature_c: g.temperature_c, power_w: g.power_w };
      for (const s of SERIES) c.values.get(s.key).textContent = dash(shown[s.key], shown[s.key] === null ? '' : s.unit);
      drawCharts(id);
    }
  }

  function drawCharts(id) {
    const c = charts.get(id);
    const h = history.get(id);
    if (!c || !h || typeof uPlot === 'undefined') return;
    for (const s of SERIES) {
      const p = c.plots.get(s.key);
      const data = [h.t, h[s.key]];
      if (!p.plot) {
        const axis = { stroke: '#8a93a3', grid: { stroke: '#2a2f3a', width: 1 }, ticks: { stroke: '#2a2f3a', width: 1 }, font: '11px system-ui' };
        p.plot = new uPlot(
          {
            width: Math.max(160, p.holder.clientWidth || 240),
            height: 90,
            legend: { show: false },
            cursor: { show: false },
            // A time axis in UTC, as the API speaks, and a value scale in the series' unit.
            tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
            axes: [{ ...axis, size: 24, space: 70 }, { ...axis, size: 52, values: (_u, ticks) => ticks.map((v) => `${compact(v)}${s.axisUnit}`) }],
            scales: { x: { time: true } },
            series: [{}, { stroke: '#58a6ff', width: 1.5, spanGaps: false }],
          },
          data,
          p.holder,
        );
      } else p.plot.setData(data);
    }
  }

  async function loadTimeline() {
    const m = await get('/debug/memory?points=600');
    for (const point of m.timeline.points) {
      const t = Date.parse(point.t) / 1000;
      for (const g of point.gpus) pushPoint(g.uuid, t, g);
    }
    for (const id of charts.keys()) drawCharts(id);
  }

  function onGpuEvent(data) {
    const t = Date.parse(data.sampled_at) / 1000;
    for (const g of data.gpus) pushPoint(g.uuid, t, { utilization_percent: g.utilization_percent, used_mb: g.memory_used_mb, temperature_c: g.temperature_c, power_w: g.power_w });
    for (const id of charts.keys()) drawCharts(id);
  }

  // ── the running job, node by node ─────────────────────────────────────────────────────────
  /** A node's duration; while it runs, how long so far; where none is known, why (muted, and on hover). */
  function nodeDuration(n) {
    if (n.duration_ms !== null) return `${(n.duration_ms / 1000).toFixed(2)} s`;
    if (n.status === 'running' && n.started_at) return `${((Date.now() - Date.parse(n.started_at)) / 1000).toFixed(1)} s so far`;
    const why = n.duration_unknown_reason ?? 'not known';
    return el('span', { class: 'muted why', title: why }, why.split(':')[0].split(' (')[0]);
  }

  function nodesTable(w) {
    return el(
      'table',
      { class: 'nodes' },
      el('thead', {}, el('tr', {}, ['node', 'class', 'status', 'steps', 'duration'].map((h) => el('th', {}, h)))),
      el(
        'tbody',
        {},
        w.nodes.map((n) =>
          el(
            'tr',
            { 'data-node': n.node_id },
            el('td', {}, n.node_id),
            el('td', {}, n.title && n.title !== n.class_type ? `${n.class_type} (${n.title})` : n.class_type),
            el('td', {}, badge(n.status)),
            el('td', { class: 'num steps' }, n.progress ? `${n.progress.steps}/${n.progress.total}` : '–'),
            el('td', { class: 'num' }, nodeDuration(n)),
          ),
        ),
      ),
    );
  }

  async function loadRunning() {
    const asked = instance;
    const w = await get(`/debug/workflow${only('?')}`, true);
    // An answer for the instance shown before the filter changed is dropped.
    if (asked !== instance) return;
    const box = $('job');
    if (w === null) {
      box.replaceChildren(el('p', { class: 'muted' }, 'No job has been seen yet.'));
      return;
    }
    const running = w.status === 'running' || w.status === 'queued';
    box.replaceChildren(
      el('p', {}, running ? '' : 'Nothing runs now; the latest job: ', el('strong', {}, w.job_id ?? w.prompt_id), ` on ${w.instance} `, badge(w.status), ` ${dash(w.progress_percent, ' %')} · ${w.nodes_completed}/${w.nodes_total} nodes · ${dash(w.duration_s, ' s')}`),
      nodesTable(w),
    );
  }

  // ── the queue and its rejections ─────────────────────────────────────────────────────────
  async function loadQueue() {
    const asked = instance;
    const q = await get(`/debug/queue${only('?')}`);
    if (asked !== instance) return;
    const rows = [...q.running.map((j) => ['running', j]), ...q.pending.map((j) => [`#${j.position}`, j])];
    $('queue').replaceChildren(
      rows.length === 0
        ? el('p', { class: 'muted' }, 'The queue is empty.')
        : el('table', {}, el('tr', {}, ['', 'instance', 'job', 'client', 'since'].map((h) => el('th', {}, h))), rows.map(([where, j]) => el('tr', {}, el('td', {}, where), el('td', {}, j.instance), el('td', {}, j.job_id ?? j.prompt_id), el('td', {}, dash(j.client_id)), el('td', {}, time(j.started_at ?? j.queued_at ?? j.first_seen_at))))),
      ...(q.rejected.length > 0 ? [el('h3', {}, 'Rejected by ComfyUI (never queued)'), rejections(q.rejected)] : []),
    );
  }

  /** Rejections with the same reasons as one row: how many, the first and the last time, the job ids named. */
  function rejections(list) {
    const groups = new Map();
    for (const r of list) {
      const reasons = r.reasons.length > 0 ? r.reasons.join('; ') : 'no reason reported';
      const key = `${r.instance ?? ''}\u0000${reasons}`;
      const g = groups.get(key) ?? { reasons, instance: r.instance, count: 0, first: r.at, last: r.at, jobs: [] };
      g.count++;
      if (r.at < g.first) g.first = r.at;
      if (r.at > g.last) g.last = r.at;
      if (r.job_id && g.jobs.length < 5) g.jobs.push(r.job_id);
      groups.set(key, g);
    }
    return el(
      'table',
      { class: 'rejections' },
      el('tr', {}, ['times', 'first', 'last', 'instance', 'reasons', 'jobs'].map((h) => el('th', {}, h))),
      [...groups.values()].map((g) => el('tr', {}, el('td', { class: 'num' }, `×${g.count}`), el('td', {}, time(g.first)), el('td', {}, time(g.last)), el('td', {}, dash(g.instance)), el('td', {}, g.reasons), el('td', {}, g.jobs.join(', ') || '–'))),
    );
  }

  // ── recent jobs, each opening to its detail ──────────────────────────────────────────────
  let jobsShown = '';
  async function loadJobs() {
    const asked = instance;
    const v = await get(`/debug/jobs?limit=30${only('&')}`);
    if (asked !== instance) return;
    // Redrawn only when something changed: a row under the pointer stays put while it is clicked.
    const shown = JSON.stringify(v.jobs);
    if (shown === jobsShown) return;
    jobsShown = shown;
    // A redraw must not take the keyboard's place away: the row that had focus gets it back.
    const focused = document.activeElement?.closest?.('#jobs button[data-open]')?.dataset.open;
    $('jobs').replaceChildren(
      v.jobs.length === 0
        ? el('p', { class: 'muted' }, 'No job remembered yet.')
        : el(
            'table',
            {},
            el('tr', {}, ['job', 'instance', 'outcome', 'duration', 'GPU-s', 'peak VRAM', 'error'].map((h) => el('th', {}, h))),
            v.jobs.map((j) =>
              el(
                'tr',
                { 'data-job': j.job_id ?? j.prompt_id },
                el('td', {}, el('button', { type: 'button', class: 'row', 'data-open': j.job_id ?? j.prompt_id }, j.job_id ?? j.prompt_id)),
                el('td', {}, j.instance),
                el('td', {}, badge(j.status)),
                el('td', { class: 'num' }, dash(j.duration_s, ' s')),
                el('td', { class: 'num' }, dash(j.gpu_seconds)),
                el('td', { class: 'num' }, dash(j.peak_vram_mb, ' MiB')),
                el('td', {}, j.error ? `${j.error.exception_type}: ${j.error.message}` : dash(j.lost_reason)),
              ),
            ),
          ),
    );
    if (focused !== undefined) [...$('jobs').querySelectorAll('button[data-open]')].find((b) => b.dataset.open === focused)?.focus();
  }

  let openId = null;
  async function openJob(id, focus = true) {
    openId = id;
    const q = encodeURIComponent(id);
    const [w, logs, arts] = await Promise.all([get(`/debug/workflow?job_id=${q}`), get(`/debug/logs?job_id=${q}&lines=200`).catch(() => ({ lines: [] })), get(`/debug/artifacts?job_id=${q}`).catch(() => ({ artifacts: [] }))]);
    if (openId !== id) return;
    const body = [el('p', {}, badge(w.status), ` prompt ${w.prompt_id} on ${w.instance} · ${dash(w.duration_s, ' s')} · GPU-s ${dash(w.gpu_seconds)} · peak VRAM ${dash(w.peak_vram_mb, ' MiB')}`)];
    if (w.error) {
      const e = w.error;
      body.push(el('h3', {}, 'Error'), el('p', { class: 'job-error' }, `${e.exception_type}${e.node_id ? ` in node ${e.node_id} (${e.class_type})` : ''}: ${e.exception_message}`));
      const evidence = Object.entries(e).filter(([k]) => !['node_id', 'class_type', 'exception_type', 'exception_message', 'traceback'].includes(k));
      if (evidence.length > 0) body.push(el('h3', {}, 'Forensics'), el('pre', { class: 'forensics' }, JSON.stringify(Object.fromEntries(evidence), null, 2)));
      if (e.traceback?.length) body.push(el('h3', {}, 'Traceback'), el('pre', {}, e.traceback.join('')));
    }
    if (w.lost_reason) body.push(el('p', {}, `lost: ${w.lost_reason}`));
    body.push(el('h3', {}, 'Nodes'), nodesTable(w));
    const images = arts.artifacts.filter((a) => a.kind === 'image');
    if (arts.artifacts.length > 0) {
      body.push(
        el('h3', {}, 'Outputs'),
        el(
          'div',
          { class: 'thumbs' },
          arts.artifacts.map((a) => {
            const src = a.url;
            return el('figure', {}, images.includes(a) ? el('img', { src, alt: a.filename, loading: 'lazy' }) : null, el('figcaption', {}, el('a', { href: src }, a.filename)));
          }),
        ),
      );
    }
    body.push(el('h3', {}, 'Log lines'), el('pre', {}, logs.lines.length > 0 ? logs.lines.map((l) => `${l.ts.slice(11, 23)} ${l.level.padEnd(5)} ${l.message}`).join('\n') : 'none'));
    $('detail-id').textContent = id;
    $('detail-body').replaceChildren(...body);
    const d = $('detail');
    d.hidden = false;
    if (focus) d.focus();
  }

  function closeJob() {
    openId = null;
    $('detail').hidden = true;
  }

  // ── the log tail ─────────────────────────────────────────────────────────────────────────
  let logSource = null;
  let lastSeq = 0;
  const MAX_LOG_LINES = 500;

  function appendLog(l) {
    const pre = $('log');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(el('span', { class: `log-${l.level}` }, `${l.ts.slice(11, 23)} ${l.level.padEnd(5)} ${(l.instance ?? l.source).padEnd(8)} ${l.message}\n`));
    while (pre.childNodes.length > MAX_LOG_LINES) pre.firstChild.remove();
    lastSeq = Math.max(lastSeq, l.seq);
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function loadLog() {
    logSource?.close();
    logSource = null;
    const level = $('log-level').value;
    const asked = instance;
    const v = await get(`/debug/logs?lines=200&level=${level}${only('&')}`);
    if (asked !== instance) return;
    $('log').replaceChildren();
    lastSeq = 0;
    for (const l of v.lines) appendLog(l);
    if ($('log-follow').checked) {
      logSource = new EventSource(`/debug/logs?follow=1&lines=1000&level=${level}&after=${lastSeq}${only('&')}`);
      logSource.onmessage = (m) => appendLog(JSON.parse(m.data));
    }
  }

  // ── live: /debug/events ──────────────────────────────────────────────────────────────────
  const refreshJobs = throttle(() => {
    loadRunning().catch(report('job'));
    loadJobs().catch(report('jobs'));
    // The open job's detail follows it too (a queued job that fails shows its error).
    if (openId !== null) openJob(openId, false).catch(report('job'));
    loadQueue().catch(report('queue'));
    loadStatus().catch(report('status'));
  }, 250);

  function follow() {
    const events = new EventSource('/debug/events');
    events.onopen = () => ($('live').textContent = 'live');
    events.onerror = () => ($('live').textContent = 'reconnecting…');
    for (const type of ['job_queued', 'job_started', 'node_started', 'progress', 'node_finished', 'job_finished']) events.addEventListener(type, refreshJobs);
    events.addEventListener('rejection', () => loadQueue().catch(report('queue')));
    for (const type of ['problem_started', 'problem_changed', 'problem_ended']) events.addEventListener(type, () => loadStatus().catch(report('status')));
    events.addEventListener('gpu', (m) => {
      onGpuEvent(JSON.parse(m.data));
      loadStatus().catch(report('status'));
    });
  }

  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('detail').hidden) closeJob();
  });
  $('detail-close').addEventListener('click', closeJob);
  $('jobs').addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button[data-open]') : null;
    if (button) openJob(button.dataset.open).catch(report('job'));
  });
  $('log-level').addEventListener('change', () => loadLog().catch(report('log')));
  $('instance').addEventListener('change', () => {
    instance = $('instance').value;
    jobsShown = '';
    refreshJobs();
    loadLog().catch(report('log'));
  });
  $('log-follow').addEventListener('change', () => loadLog().catch(report('log')));
  if (document.body.dataset.session === 'cookie') $('logout').hidden = false;

  (async () => {
    await loadStatus();
    await loadTimeline();
    await Promise.all([loadRunning(), loadQueue(), loadJobs(), loadLog()]);
    follow();
  })().catch(report('page'));
})();
