/**
 * Workflows and a client for the simulated ComfyUI (the demo, tests and the bench use them): a
 * text-to-image graph, and a POST /prompt as a client makes it.
 */
import { CHECKPOINTS, type Graph } from './comfy-graph.js';

/** A text-to-image graph where every node feeds the SaveImage output (7 nodes). */
export function txt2img(opts: { seed?: number; steps?: number; batch?: number; ckpt?: string; prefix?: string; output?: string } = {}): Graph {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: opts.ckpt ?? CHECKPOINTS[0] }, _meta: { title: 'Load Checkpoint' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 1024, height: 1024, batch_size: opts.batch ?? 1 }, _meta: { title: 'Empty Latent Image' } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse at dusk', clip: ['4', 1] }, _meta: { title: 'Positive' } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] }, _meta: { title: 'Negative' } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: opts.seed ?? 42, steps: opts.steps ?? 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] },
      _meta: { title: 'KSampler' },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] }, _meta: { title: 'VAE Decode' } },
    '9': { class_type: opts.output ?? 'SaveImage', inputs: { images: ['8', 0], filename_prefix: opts.prefix ?? 'ComfyUI' }, _meta: { title: 'Save Image' } },
  };
}

/** Submits a prompt the way a client does; resolves with ComfyUI's answer. */
export async function submit(
  url: string,
  graph: Graph,
  opts: { clientId?: string; extra?: Record<string, unknown>; promptId?: string } = {},
): Promise<{ status: number; body: { prompt_id?: string; number?: number; node_errors?: unknown; error?: unknown } }> {
  const payload: Record<string, unknown> = { prompt: graph };
  if (opts.clientId) payload.client_id = opts.clientId;
  if (opts.extra) payload.extra_data = opts.extra;
  if (opts.promptId) payload.prompt_id = opts.promptId;
  const res = await fetch(`${url}/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  return { status: res.status, body: (await res.json()) as never };
}
