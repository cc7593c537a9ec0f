/**
 * What a prompt's graph (ComfyUI's API format, `{id: {class_type, inputs, _meta}}`) says about its
 * execution: the order nodes can run in, what each depends on, which ones an execution needs, and
 * how much work each plans (`steps`).
 */
import { isRecord } from '../shared/job-types.js';

/** The ids a node's inputs link to (`[node_id, slot]`), restricted to nodes of the graph. */
function links(graph: Record<string, unknown>, id: string): string[] {
  const node = graph[id];
  const inputs = isRecord(node) && isRecord(node.inputs) ? node.inputs : {};
  const ups: string[] = [];
  for (const v of Object.values(inputs)) {
    if (Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && typeof v[1] === 'number') {
      const up = String(v[0]);
      if (up in graph && up !== id) ups.push(up);
    }
  }
  return ups;
}

const byId = (a: string, b: string) => Number(a) - Number(b) || a.localeCompare(b);

/** Node ids ordered so each comes after its inputs; ties go to the lower id (numeric when ids are numbers). */
export function topologicalOrder(graph: Record<string, unknown>): string[] {
  const ids = Object.keys(graph);
  const deps = new Map<string, Set<string>>();
  const users = new Map<string, string[]>();
  for (const id of ids) {
    const set = new Set(links(graph, id));
    deps.set(id, set);
    for (const up of set) users.set(up, [...(users.get(up) ?? []), id]);
  }
  const ready = ids.filter((id) => deps.get(id)!.size === 0).sort(byId);
  const out: string[] = [];
  const placed = new Set<string>();
  while (ready.length > 0) {
    const id = ready.shift()!;
    out.push(id);
    placed.add(id);
    for (const u of users.get(id) ?? []) {
      const d = deps.get(u)!;
      d.delete(id);
      if (d.size === 0) {
        ready.push(u);
        ready.sort(byId);
      }
    }
  }
  // A cycle (invalid graph) leaves nodes behind: keep them, in id order.
  for (const id of ids.sort(byId)) if (!placed.has(id)) out.push(id);
  return out;
}

/** For each node, every node upstream of it (its inputs, their inputs, …). */
export function ancestors(graph: Record<string, unknown>): Map<string, Set<string>> {
  const direct = new Map<string, string[]>();
  for (const id of Object.keys(graph)) direct.set(id, links(graph, id));
  const out = new Map<string, Set<string>>();
  for (const id of direct.keys()) {
    const seen = new Set<string>();
    const stack = [...direct.get(id)!];
    while (stack.length > 0) {
      const up = stack.pop()!;
      if (seen.has(up) || up === id) continue;
      seen.add(up);
      stack.push(...(direct.get(up) ?? []));
    }
    out.set(id, seen);
  }
  return out;
}

/**
 * The nodes an execution needs: the outputs and everything upstream of them. Null when the graph
 * does not say which outputs run.
 */
export function neededNodes(graph: Record<string, unknown>, outputs: readonly string[]): Set<string> | null {
  const roots = outputs.filter((o) => o in graph);
  if (roots.length === 0) return null;
  const needed = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    for (const up of links(graph, id)) if (!needed.has(up)) stack.push(up);
  }
  return needed;
}

/** The `steps` a node plans (a sampler's `steps` input), or null. */
export function plannedSteps(node: unknown): number | null {
  const inputs = isRecord(node) && isRecord(node.inputs) ? node.inputs : null;
  const steps = inputs?.steps;
  return typeof steps === 'number' && Number.isInteger(steps) && steps > 0 && steps <= 100_000 ? steps : null;
}
