/** Which GPUs a ComfyUI instance runs on, from its command line, its process's environment, or its /system_stats. */
import { describe, expect, it } from 'vitest';
import { cudaDeviceArg, resolveInstanceGpus, usageScope, type PodGpu } from '../../src/state/instance-gpus.js';

// Four H100s as nvidia-smi lists them (uuids shortened from the recorded x8 fixture's form).
const POD: PodGpu[] = [0, 1, 2, 3].map((i) => ({ index: i, uuid: `GPU-${i}a5f8c2e-1111-2222-3333-44445555666${i}`, name: 'NVIDIA H100 80GB HBM3', memory_total_mb: 81559 }));
// What ComfyUI 0.3.64's /system_stats says of the one device it sees.
const ONE_H100 = { devices: [{ name: 'cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync', type: 'cuda', index: 0, vram_total: 85_029_158_912 }] };

describe("an instance's GPUs", () => {
  it('are the one --cuda-device names, in either spelling', () => {
    expect(cudaDeviceArg(['main.py', '--listen', '0.0.0.0', '--cuda-device', '2'])).toBe('2');
    expect(cudaDeviceArg(['main.py', '--cuda-device=3'])).toBe('3');
    expect(resolveInstanceGpus({ argv: ['main.py', '--cuda-device', '2'], systemStats: ONE_H100 }, POD)).toEqual({ gpus: [{ index: 2, uuid: POD[2]!.uuid }], source: 'argv' });
  });

  it('are those its CUDA_VISIBLE_DEVICES names, by index or uuid, when its command line names none', () => {
    expect(resolveInstanceGpus({ argv: ['main.py'], cudaVisibleDevices: '1,3', systemStats: null }, POD)).toEqual({
      gpus: [
        { index: 1, uuid: POD[1]!.uuid },
        { index: 3, uuid: POD[3]!.uuid },
      ],
      source: 'cuda_visible_devices',
    });
    expect(resolveInstanceGpus({ argv: null, cudaVisibleDevices: 'GPU-2a5f8c2e', systemStats: null }, POD)).toEqual({ gpus: [{ index: 2, uuid: POD[2]!.uuid }], source: 'cuda_visible_devices' });
  });

  it('stop at the first entry CUDA cannot use, as CUDA does', () => {
    expect(resolveInstanceGpus({ argv: null, cudaVisibleDevices: '0,-1,2', systemStats: null }, POD)).toEqual({ gpus: [{ index: 0, uuid: POD[0]!.uuid }], source: 'cuda_visible_devices' });
  });

  it('are unknown, with the reason, for a MIG instance or a uuid nvidia-smi does not list', () => {
    expect(resolveInstanceGpus({ argv: null, cudaVisibleDevices: 'MIG-4b1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff', systemStats: null }, POD)).toMatchObject({ gpus: null, reason: expect.stringMatching(/MIG-4b1c.* cannot map .*MIG instance/) });
    expect(resolveInstanceGpus({ argv: null, cudaVisibleDevices: 'GPU-ffffffff', systemStats: null }, POD)).toMatchObject({ gpus: null, reason: expect.stringMatching(/GPU-ffffffff, which nvidia-smi does not list/) });
  });

  it('are every GPU of the pod when ComfyUI sees all of them', () => {
    const all = { devices: POD.map((g, i) => ({ name: `cuda:${i} ${g.name} : cudaMallocAsync`, type: 'cuda', index: i })) };
    expect(resolveInstanceGpus({ argv: ['main.py'], systemStats: all }, POD)).toEqual({ gpus: POD.map((g) => ({ index: g.index, uuid: g.uuid })), source: 'system_stats' });
  });

  it('are unknown, saying why, when ComfyUI sees one of several identical GPUs and nothing says which', () => {
    expect(resolveInstanceGpus({ argv: ['main.py'], systemStats: ONE_H100 }, POD)).toMatchObject({ gpus: null, reason: expect.stringMatching(/sees 1 of the pod's 4 GPUs and neither .*--cuda-device.* nor .*CUDA_VISIBLE_DEVICES/) });
  });

  it('are found by name when the name tells the pod’s GPUs apart', () => {
    const mixed: PodGpu[] = [POD[0]!, { index: 1, uuid: 'GPU-l40s', name: 'NVIDIA L40S', memory_total_mb: 46068 }];
    const stats = { devices: [{ name: 'cuda:0 NVIDIA L40S : cudaMallocAsync', type: 'cuda', index: 0 }] };
    expect(resolveInstanceGpus({ argv: ['main.py'], systemStats: stats }, mixed)).toEqual({ gpus: [{ index: 1, uuid: 'GPU-l40s' }], source: 'system_stats' });
  });

  it('are none for a ComfyUI on the CPU', () => {
    expect(resolveInstanceGpus({ argv: ['main.py', '--cpu'], systemStats: { devices: [{ name: 'cpu', type: 'cpu', index: null }] } }, POD)).toEqual({ gpus: [], source: 'system_stats' });
  });

  it('are unknown before ComfyUI answered /system_stats, unless its command line says', () => {
    expect(resolveInstanceGpus({ argv: null, systemStats: null }, POD)).toMatchObject({ gpus: null, reason: expect.stringMatching(/not answered \/system_stats/) });
  });
});

describe("the GPUs a job's use is counted on", () => {
  const one = { gpus: [{ index: 1, uuid: 'GPU-b' }], source: 'argv' as const };
  it("are its instance's, however many instances there are", () => {
    expect(usageScope(one, 1)).toEqual(new Set(['GPU-b']));
    expect(usageScope(one, 4)).toEqual(new Set(['GPU-b']));
  });

  it("are every GPU for the pod's only ComfyUI whose GPUs are unknown, as before", () => {
    expect(usageScope({ gpus: null, reason: 'x' }, 1)).toBeUndefined();
  });

  it('are unknown (null) for an instance whose GPUs are unknown on a pod of several', () => {
    expect(usageScope({ gpus: null, reason: 'x' }, 2)).toBeNull();
    expect(usageScope({ gpus: [{ index: 1, uuid: null }], source: 'argv' }, 2)).toBeNull();
  });
});
