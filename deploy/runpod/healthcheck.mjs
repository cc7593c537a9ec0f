// The container's health is its workload's: every ComfyUI answering /system_stats (COMFYUI_URLS,
// NAME=URL or URL each, else COMFYUI_URL). podscope's own state never makes the container unhealthy
// (an orchestrator acting on that would take ComfyUI down).
const list = process.env.COMFYUI_URLS
  ? process.env.COMFYUI_URLS.split(',').map((e) => e.trim()).filter(Boolean).map((e) => e.replace(/^[^=:/]+=/, ''))
  : [process.env.COMFYUI_URL || 'http://127.0.0.1:8188'];
const answers = (base) => fetch(`${base.replace(/\/+$/, '')}/system_stats`, { signal: AbortSignal.timeout(4000) }).then((res) => res.ok, () => false);
Promise.all(list.map(answers)).then((ok) => process.exit(ok.length > 0 && ok.every(Boolean) ? 0 : 1));
