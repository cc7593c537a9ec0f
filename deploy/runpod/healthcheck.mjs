// The container's health is its workload's: ComfyUI answering /system_stats. podscope's own state
// never makes the container unhealthy (an orchestrator acting on that would take ComfyUI down).
const base = (process.env.COMFYUI_URL || 'http://127.0.0.1:8188').replace(/\/+$/, '');
fetch(`${base}/system_stats`, { signal: AbortSignal.timeout(4000) }).then(
  (res) => process.exit(res.ok ? 0 : 1),
  () => process.exit(1),
);
