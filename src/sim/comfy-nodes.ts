/**
 * How each node class of the simulated ComfyUI behaves when it runs: loaders and encoders are
 * quick, samplers run their steps with a tqdm bar in the log (and a KSampler runs out of GPU
 * memory when its latent batch is absurdly large), output nodes write files, the conformance
 * suite's test nodes do what the real ones do.
 */
import { randomUUID } from 'node:crypto';
import { batchOf, type Graph } from './comfy-graph.js';

/** An interrupt (or the server stopping) cut the running node short. */
export class Interrupted extends Error {}

/** A node raised: its exception type, message and traceback, as ComfyUI reports them. */
export class NodeFailure extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly traceback: string[],
  ) {
    super(message);
  }
}

/** What a running node may use of the server that runs it. */
export interface NodeHost {
  /** The prompt's graph. */
  graph: Graph;
  nodeMs: number;
  stepMs: number;
  /** Send a binary preview after each sampler step. */
  previews: boolean;
  /** Waits `ms`; throws {@link Interrupted} when the prompt was interrupted meanwhile. */
  tick(ms: number): Promise<void>;
  log(text: string): void;
  /** Sends a binary preview frame to the prompt's client. */
  preview(frame: Buffer): void;
  writeOutput(prefix: string, ext: string, type: 'output' | 'temp'): { filename: string; subfolder: string; type: string };
}

export async function runNode(sim: NodeHost, node: Graph[string], progress: (v: number, m: number) => void): Promise<Record<string, unknown> | null> {
  const { nodeMs, stepMs, previews } = sim;
  switch (node.class_type) {
    case 'CheckpointLoaderSimple':
      sim.log('model weight dtype torch.float16, manual cast: None\n');
      sim.log('Requested to load SDXL\n');
      await sim.tick(nodeMs * 4);
      sim.log('loaded completely 9.5367431640625e+25 4897.0483474731445 True\n');
      return null;
    case 'KSampler': {
      const steps = Math.max(1, Number(node.inputs.steps ?? 20));
      const batch = batchOf(sim.graph, node);
      for (let s = 1; s <= steps; s++) {
        await sim.tick(stepMs);
        if (batch >= 64 && s === 2) {
          throw new NodeFailure(
            'torch.OutOfMemoryError',
            'Allocation on device \nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.',
            [
              '  File "/comfyui/execution.py", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n',
              '  File "/comfyui/comfy/k_diffusion/sampling.py", line 199, in sample_euler\n    denoised = model(x, sigma_hat * s_in, **extra_args)\n',
            ],
          );
        }
        progress(s, steps);
        const pct = Math.round((s / steps) * 100);
        const bar = '█'.repeat(Math.round(pct / 10)).padEnd(10, ' ');
        sim.log(`\r${String(pct).padStart(3)}%|${bar}| ${s}/${steps} [00:0${Math.min(9, s)}<00:00,  ${(1000 / stepMs).toFixed(2)}it/s]${s === steps ? '\n' : ''}`);
        if (previews) {
          const img = Buffer.from('ffd8ffe000104a464946', 'hex');
          const head = Buffer.alloc(8);
          head.writeUInt32BE(1, 0);
          head.writeUInt32BE(1, 4);
          sim.preview(Buffer.concat([head, img]));
        }
      }
      return null;
    }
    case 'SimSleep':
      await sim.tick(Number(node.inputs.seconds ?? 1) * 1000);
      return null;
    case 'PodscopeSlowLoad':
      await sim.tick(Number(node.inputs.ms ?? 500));
      return null;
    case 'PodscopeTqdmSampler': {
      const steps = Math.max(1, Number(node.inputs.steps ?? 10));
      const ms = Number(node.inputs.step_ms ?? 50);
      sim.log(`\r  0%|          | 0/${steps} [00:00<?, ?it/s]`);
      for (let s = 1; s <= steps; s++) {
        await sim.tick(ms);
        progress(s, steps);
        const pct = Math.round((s / steps) * 100);
        sim.log(`\r${String(pct).padStart(3)}%|${'█'.repeat(Math.round(pct / 10)).padEnd(10, ' ')}| ${s}/${steps} [00:00<00:00, ${(1000 / Math.max(1, ms)).toFixed(2)}it/s]`);
      }
      sim.log('\n');
      return null;
    }
    case 'PodscopeRaise': {
      await sim.tick(nodeMs);
      const message = String(node.inputs.message ?? 'podscope test node failed on purpose');
      throw new NodeFailure('RuntimeError', message, [
        '  File "/comfyui/execution.py", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n',
        `  File "/comfyui/custom_nodes/podscope_test_nodes/__init__.py", line 78, in run\n    raise RuntimeError(message)\n`,
      ]);
    }
    case 'PodscopeMarker':
      sim.log(`${String(node.inputs.marker ?? 'podscope-marker')}\n`);
      return null;
    case 'SaveImage':
    case 'PreviewImage':
    case 'SaveAnimatedWEBP': {
      await sim.tick(nodeMs);
      const temp = node.class_type === 'PreviewImage';
      // PreviewImage names its files ComfyUI_temp_<5 random letters>_00001_.png.
      const prefix = temp ? `ComfyUI_temp_${randomUUID().replace(/[^a-f]/g, '').padEnd(5, 'a').slice(0, 5)}` : String(node.inputs.filename_prefix ?? 'ComfyUI');
      const ext = node.class_type === 'SaveAnimatedWEBP' ? 'webp' : 'png';
      const file = sim.writeOutput(prefix, ext, temp ? 'temp' : 'output');
      return node.class_type === 'SaveAnimatedWEBP' ? { images: [file], animated: [true] } : { images: [file] };
    }
    case 'VHS_VideoCombine': {
      await sim.tick(nodeMs * 2);
      const file = sim.writeOutput(String(node.inputs.filename_prefix ?? 'AnimateDiff'), 'mp4', 'output');
      return { gifs: [{ ...file, format: 'video/h264-mp4', frame_rate: 8, workflow: `${file.filename.replace('.mp4', '.png')}`, fullpath: `/comfyui/output/${file.filename}` }] };
    }
    case 'SaveAudio': {
      await sim.tick(nodeMs);
      return { audio: [sim.writeOutput(String(node.inputs.filename_prefix ?? 'audio/ComfyUI'), 'flac', 'output')] };
    }
    default:
      await sim.tick(nodeMs);
      return null;
  }
}
