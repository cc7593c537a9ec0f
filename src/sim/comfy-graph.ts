/**
 * The simulated ComfyUI's nodes as a graph: which classes it knows, how it validates a prompt (as
 * ComfyUI answers a POST /prompt it refuses, and the lines it logs), the order nodes run in, and
 * the signature that makes a node a cache hit.
 */

export type Graph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }>;

export const KNOWN_CLASSES = new Set([
  'CheckpointLoaderSimple',
  'EmptyLatentImage',
  'CLIPTextEncode',
  'KSampler',
  'VAEDecode',
  'SaveImage',
  'PreviewImage',
  'SaveAnimatedWEBP',
  'VHS_VideoCombine',
  'SaveAudio',
  'SimSleep',
  // The conformance suite's nodes (test/comfyui/nodes) and the core nodes its workflows use.
  'EmptyImage',
  'ImageInvert',
  'PodscopeTqdmSampler',
  'PodscopeSlowLoad',
  'PodscopeRaise',
  'PodscopeMarker',
]);
/** Inputs with a minimum that validation checks (`INPUT_TYPES` min), by class. */
export const MINIMUMS: Record<string, Array<[string, number]>> = { PodscopeTqdmSampler: [['steps', 1]], EmptyImage: [['width', 1], ['height', 1]], KSampler: [['steps', 1]] };
export const OUTPUT_CLASSES = new Set(['SaveImage', 'PreviewImage', 'SaveAnimatedWEBP', 'VHS_VideoCombine', 'SaveAudio']);
export const CHECKPOINTS = ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.safetensors'];

/** ComfyUI's verdict on a prompt it refuses (its answer's body and the lines it logs), or null when it is valid. */
export function validateGraph(graph: Graph): { body: unknown; lines: string[] } | null {
  const ids = Object.keys(graph);
  if (ids.length === 0) return { body: { error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, node_errors: {} }, lines: ['invalid prompt: Prompt has no outputs'] };
  const nodeErrors: Record<string, unknown> = {};
  const lines: string[] = [];
  for (const id of ids) {
    const n = graph[id]!;
    if (!KNOWN_CLASSES.has(n.class_type)) {
      return {
        body: { error: { type: 'invalid_prompt', message: `Cannot execute because node ${n.class_type} does not exist.`, details: `Node ID '#${id}'`, extra_info: {} }, node_errors: {} },
        lines: [`invalid prompt: Cannot execute because node ${n.class_type} does not exist.`],
      };
    }
    for (const [input, min] of MINIMUMS[n.class_type] ?? []) {
      const value = n.inputs[input];
      if (typeof value !== 'number' || value >= min) continue;
      const out = ids.find((o) => OUTPUT_CLASSES.has(graph[o]!.class_type)) ?? id;
      nodeErrors[id] = {
        errors: [{ type: 'value_smaller_than_min', message: `Value ${value} smaller than min of ${min}`, details: input, extra_info: { input_name: input, received_value: value } }],
        dependent_outputs: [out],
        class_type: n.class_type,
      };
      lines.push(`Failed to validate prompt for output ${out}:`, `* ${n.class_type} ${id}:`, `  - Value ${value} smaller than min of ${min}: ${input}`, 'Output will be ignored');
    }
    if (n.class_type === 'CheckpointLoaderSimple' && !CHECKPOINTS.includes(String(n.inputs.ckpt_name))) {
      const out = ids.find((o) => OUTPUT_CLASSES.has(graph[o]!.class_type)) ?? id;
      nodeErrors[id] = {
        errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: `ckpt_name: '${String(n.inputs.ckpt_name)}' not in ${JSON.stringify(CHECKPOINTS)}`, extra_info: { input_name: 'ckpt_name' } }],
        dependent_outputs: [out],
        class_type: n.class_type,
      };
      lines.push(`Failed to validate prompt for output ${out}:`, `* CheckpointLoaderSimple ${id}:`, `  - Value not in list: ckpt_name: '${String(n.inputs.ckpt_name)}' not in ['${CHECKPOINTS.join("', '")}']`, 'Output will be ignored');
    }
  }
  if (Object.keys(nodeErrors).length === 0) return null;
  lines.push("invalid prompt: {'type': 'prompt_outputs_failed_validation', 'message': 'Prompt outputs failed validation', 'details': '', 'extra_info': {}}");
  return { body: { error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: nodeErrors }, lines };
}

/** The nodes that run for `outputs`, each after its inputs. */
export function executionOrder(graph: Graph, outputs: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (id: string) => {
    if (seen.has(id) || !graph[id]) return;
    seen.add(id);
    for (const v of Object.values(graph[id]!.inputs)) if (Array.isArray(v) && typeof v[0] === 'string') visit(v[0]);
    out.push(id);
  };
  for (const o of outputs) visit(o);
  return out;
}

/** A node's class and inputs, its inputs' own signatures included: equal signatures are a cache hit. */
export function cacheSignature(graph: Graph, id: string, memo = new Map<string, string>()): string {
  const hit = memo.get(id);
  if (hit) return hit;
  const n = graph[id]!;
  const parts = Object.entries(n.inputs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => (Array.isArray(v) && typeof v[0] === 'string' && graph[v[0]] ? `${k}=<${cacheSignature(graph, v[0], memo)}>` : `${k}=${JSON.stringify(v)}`));
  const sig = `${n.class_type}(${parts.join(',')})`;
  memo.set(id, sig);
  return sig;
}

/** The latent batch a sampler node works on (its EmptyLatentImage's batch_size), 1 when unknown. */
export function batchOf(graph: Graph, node: Graph[string]): number {
  const latent = node.inputs.latent_image;
  if (Array.isArray(latent) && typeof latent[0] === 'string') {
    const up = graph[latent[0]];
    if (up?.class_type === 'EmptyLatentImage') return Number(up.inputs.batch_size ?? 1);
  }
  return 1;
}
