/**
 * A log the real ComfyUI 0.3.64 wrote (test/fixtures/comfyui-logs/real-0.3.64-cpu.txt: start-up
 * with a broken custom node, a sampler prompt with a tqdm bar, a node that raises, a prompt that
 * fails validation and one naming a node that does not exist), read the way podscope reads
 * ComfyUI's log stream.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LogCollector, promptLevelReason } from '../../src/collectors/logs.js';
import { LogStore } from '../../src/state/logs.js';
import { ComfyState } from '../../src/state/comfy.js';
import { HealthBoard } from '../../src/state/health.js';
import { Scrubber } from '../../src/secrets.js';

const LOG = readFileSync(new URL('../fixtures/comfyui-logs/real-0.3.64-cpu.txt', import.meta.url), 'utf8');

function read(text = LOG) {
  const store = new LogStore(2000, 8 * 1024 * 1024);
  const comfy = new ComfyState('http://127.0.0.1:8188', { jobIdKey: 'job_id', historyLimit: 10 });
  const health = new HealthBoard();
  const collector = new LogCollector({ logFile: undefined, store, comfy, health, scrubber: new Scrubber([]) });
  // As the log stream hands it over: one entry per write.
  collector.ingestComfy(text.split(/(?<=\n)/).map((m, i) => ({ t: `2026-11-23T23:59:00.${String(i).padStart(6, '0')}`, m })));
  const records = store.ring.toArray().map((e) => e.value);
  const find = (start: string) => records.find((r) => r.message.startsWith(start));
  return { records, find, comfy, health };
}

describe('the real start-up log', () => {
  it('keeps every line: nothing is lost between writes and records', () => {
    const { records } = read();
    const kept = records.reduce((n, r) => n + r.message.split('\n').length, 0);
    // Blank lines end records and are not kept; tqdm's redraws of one bar make one line.
    const written = LOG.split('\n').filter((l) => l.trim() !== '').length;
    expect(kept).toBe(written);
  });

  it('reads a custom node’s import traceback as one error record', () => {
    const tb = read().records.filter((r) => r.message.startsWith('Traceback') && r.message.includes('does_not_exist_anywhere'));
    expect(tb).toHaveLength(1);
    expect(tb[0]!.level).toBe('error');
    expect(tb[0]!.message.split('\n').at(-1)).toBe("ModuleNotFoundError: No module named 'does_not_exist_anywhere'");
  });

  it('reads "Cannot import … module for custom nodes" as an error', () => {
    expect(read().find('Cannot import /comfyui/custom_nodes/broken_node')?.level).toBe('error');
  });

  it('raises CUSTOM_NODE_IMPORT_FAILED naming the broken node and no other', () => {
    const p = read().health.problems().find((x) => x.code === 'CUSTOM_NODE_IMPORT_FAILED');
    expect(p).toMatchObject({ severity: 'warning', message: 'custom nodes failed to import at start-up: /comfyui/custom_nodes/broken_node' });
  });

  it('reads the API nodes ComfyUI could not import as warnings', () => {
    const api = read().records.filter((r) => r.message.startsWith('IMPORT FAILED: nodes_'));
    expect(api.length).toBe(LOG.match(/^IMPORT FAILED: nodes_/gm)!.length);
    expect(new Set(api.map((r) => r.level))).toEqual(new Set(['warn']));
  });

  it('reads ComfyUI’s own warnings and failures to set something up as warnings', () => {
    const { find } = read();
    expect(find('Warning, you are using an old pytorch version')?.level).toBe('warn');
    expect(find('WARNING: some comfy_api_nodes/')?.level).toBe('warn');
    expect(find('Failed to initialize database')?.level).toBe('warn');
    expect(find('Failed to check frontend version')?.level).toBe('warn');
  });

  it('reads the plain start-up lines as info', () => {
    const { find } = read();
    for (const line of ['ComfyUI version: 0.3.64', 'Device: cpu', 'Starting server', 'To see the GUI go to: http://127.0.0.1:8188']) expect(find(line)?.level).toBe('info');
  });
});

describe('the real prompts', () => {
  it('collapses the tqdm redraws of a 4-step bar to its last state, on one line', () => {
    const bars = read().records.filter((r) => r.message.includes('%|'));
    expect(bars).toHaveLength(1);
    expect(bars[0]!.message).toMatch(/^100%\|█+\| 4\/4 \[00:00<00:00, +[\d.]+it\/s\]$/);
  });

  it('keeps a node’s own log line', () => {
    expect(read().find('podscope-marker-real')?.level).toBe('info');
  });

  it('reads a node that raised as the exception line and its whole traceback, at error', () => {
    const { find } = read();
    expect(find('!!! Exception during processing !!! podscope test node failed on purpose')?.level).toBe('error');
    const tb = find('Traceback (most recent call last):\n  File "/comfyui/execution.py"')!;
    expect(tb.level).toBe('error');
    expect(tb.message.split('\n').at(-1)).toBe('RuntimeError: podscope test node failed on purpose');
  });

  it('reads every "Prompt executed in" line as info', () => {
    const ends = read().records.filter((r) => r.message.startsWith('Prompt executed in'));
    expect(ends.map((r) => r.level)).toEqual(['info', 'info']);
  });
});

describe('the real rejections', () => {
  it('records the validation failure with its reason as a sentence and its lines', () => {
    const r = read().comfy.rejections[0]!;
    expect(r.reasons).toEqual(['PodscopeTqdmSampler 2: Value 0 smaller than min of 1: steps']);
    expect(r.lines[0]).toBe('Failed to validate prompt for output 3:');
    expect(r.lines.at(-1)).toMatch(/^invalid prompt: \{'type': 'prompt_outputs_failed_validation'/);
  });

  it('records a prompt naming a node that does not exist, with ComfyUI’s message as its reason', () => {
    const r = read().comfy.rejections[1]!;
    expect(r.reasons).toEqual(['Cannot execute because node NoSuchNode does not exist.']);
  });

  it('raises PROMPT_REJECTED with the latest rejection’s reason', () => {
    const p = read().health.problems().find((x) => x.code === 'PROMPT_REJECTED');
    expect(p?.message).toBe('ComfyUI rejected a prompt (HTTP 400, never queued): Cannot execute because node NoSuchNode does not exist.');
  });
});

describe('promptLevelReason', () => {
  it('reads a message quoted with single quotes', () => {
    expect(promptLevelReason("invalid prompt: {'type': 'x', 'message': 'Prompt has no outputs', 'details': ''}")).toBe('Prompt has no outputs');
  });

  it('reads a message Python quoted with double quotes because it holds a single quote', () => {
    expect(promptLevelReason(`invalid prompt: {'type': 'x', 'message': "Node 'KSampler' is broken", 'details': ''}`)).toBe("Node 'KSampler' is broken");
  });

  it('is null for a line without a message', () => {
    expect(promptLevelReason('invalid prompt: something else')).toBeNull();
  });
});
