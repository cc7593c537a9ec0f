/** podscope in this process against the fake nvidia-smi (a real child process), ComfyUI unreachable. */
import { startPodscope, type Podscope } from '../../src/main.js';
import type { FakeSmiConfig } from '../../src/sim/fake-nvidia-smi.js';
import { FakeSmi } from './fake-smi.js';

export interface GpuPod {
  pod: Podscope;
  fake: FakeSmi;
  base: string;
  get(path: string): Promise<Response>;
}

export async function startGpuPod(config: FakeSmiConfig, env: Record<string, string> = {}): Promise<GpuPod> {
  const fake = new FakeSmi(config);
  // The fake reads its configuration from the environment podscope's nvidia-smi children inherit.
  process.env.FAKE_NVIDIA_SMI = fake.file;
  const pod = await startPodscope({
    env: {
      PODSCOPE_PORT: '0',
      PODSCOPE_HOST: '127.0.0.1',
      COMFYUI_URL: 'http://127.0.0.1:9',
      PODSCOPE_NVIDIA_SMI: fake.bin,
      // The fake GPUs, never a real NVML a developer's machine may have.
      PODSCOPE_GPU_BACKEND: 'nvidia-smi',
      PODSCOPE_GPU_INTERVAL_MS: '200',
      LOG_LEVEL: 'silent',
      ...env,
    },
    sinks: [],
  });
  const base = `http://127.0.0.1:${pod.port}`;
  return { pod, fake, base, get: (path) => fetch(`${base}${path}`) };
}
