/** What a prompt's graph says about its execution, read from the txt2img graph the simulator and ComfyUI's examples use. */
import { describe, expect, it } from 'vitest';
import { ancestors, neededNodes, plannedSteps, topologicalOrder } from '../../src/state/job-graph.js';
import { txt2img } from '../../src/sim/comfyui.js';

// 4 checkpoint → 6/7 text encoders, 5 latent → 3 KSampler → 8 VAE decode → 9 SaveImage.
const graph = txt2img({ steps: 20 }) as Record<string, unknown>;

describe('execution order', () => {
  it('puts each node after its inputs, lower ids first among the ready ones', () => {
    expect(topologicalOrder(graph)).toEqual(['4', '5', '6', '7', '3', '8', '9']);
  });

  it('keeps the nodes of a cycle (an invalid graph) at the end, in id order', () => {
    const cyclic = { 1: { inputs: { a: ['2', 0] } }, 2: { inputs: { a: ['1', 0] } }, 3: { inputs: {} } };
    expect(topologicalOrder(cyclic)).toEqual(['3', '1', '2']);
  });

  it('ignores links to nodes that are not in the graph, and a node linking to itself', () => {
    expect(topologicalOrder({ 1: { inputs: { a: ['99', 0], b: ['1', 0] } }, 2: { inputs: { a: ['1', 0] } } })).toEqual(['1', '2']);
  });

  it('treats values that only look like links (wrong arity or types) as plain inputs', () => {
    expect(topologicalOrder({ 2: { inputs: { a: ['1', 0, 5], b: ['1', '0'] } }, 1: { inputs: {} } })).toEqual(['1', '2']);
  });
});

describe('upstream nodes', () => {
  it('lists everything a node depends on, directly or not', () => {
    expect([...ancestors(graph).get('8')!].sort()).toEqual(['3', '4', '5', '6', '7']);
    expect(ancestors(graph).get('4')!.size).toBe(0);
  });
});

describe('the nodes an execution needs', () => {
  it('are the outputs and everything upstream', () => {
    const g = { ...graph, 10: { class_type: 'PreviewImage', inputs: { images: ['8', 0] } } };
    expect([...neededNodes(g, ['10'])!].sort()).toEqual(['10', '3', '4', '5', '6', '7', '8']);
  });

  it('are unknown when no named output is in the graph', () => {
    expect(neededNodes(graph, ['42'])).toBeNull();
    expect(neededNodes(graph, [])).toBeNull();
  });
});

describe('planned steps', () => {
  it("is a sampler's steps input", () => {
    expect(plannedSteps(graph['3'])).toBe(20);
  });

  it.each([
    ['a node without steps', graph['9']],
    ['steps linked from another node', { inputs: { steps: ['12', 0] } }],
    ['zero steps', { inputs: { steps: 0 } }],
    ['fractional steps', { inputs: { steps: 2.5 } }],
    ['absurd steps', { inputs: { steps: 1e9 } }],
    ['not a node', 'garbage'],
  ])('is unknown for %s', (_name, node) => {
    expect(plannedSteps(node)).toBeNull();
  });
});
