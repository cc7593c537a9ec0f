import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startPodscope } from '../../src/main.js';
import { until } from '../helpers/wait.js';

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe('/metrics under promtool', () => {
  // CI installs Debian's prometheus package; a developer machine without it skips, CI never does.
  it.skipIf(!hasPromtool && !process.env.CI)('passes `promtool check metrics` on the real output', async () => {
    const pod = await startPodscope({
      // Traces on (to a closed port), so their families are checked too.
      env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_NVIDIA_SMI: '/nonexistent/nvidia-smi', LOG_LEVEL: 'silent', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' },
      sinks: [],
    });
    try {
      await fetch(`http://127.0.0.1:${pod.port}/health`);
      // The process metrics come from the host collector's first sample.
      const text = await until(async () => {
        const t = await (await fetch(`http://127.0.0.1:${pod.port}/metrics`)).text();
        return /^process_resident_memory_bytes \d+/m.test(t) ? t : null;
      });
      // Process memory and descriptors come from the host collector's sample: no /proc read during the scrape.
      expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(text).toMatch(/^process_open_fds \d+/m);
      expect(text).toMatch(/^podscope_trace_spans_dropped_total\{reason="queue_full"\} 0$/m);
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      await pod.close();
    }
  });
});
