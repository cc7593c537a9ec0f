/**
 * How the conformance suite tells which scenarios a ComfyUI release cannot support
 * (test/comfyui/release.ts), and how it reads where a release sends progress_state from its source.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareReleases, limitOf, progressStateOf, type Limit } from '../comfyui/release.js';

const limits: Limit[] = [{ title: 'follows progress_state', mode: 'observer', since: '0.3.50', reason: 'no progress_state before it existed' }];

describe('a scenario a release cannot support', () => {
  it('is marked with the release and the reason on a release before the one it needs', () => {
    expect(limitOf('follows progress_state', 'observer', '0.3.30', limits)).toBe('not on ComfyUI 0.3.30: no progress_state before it existed');
  });

  it('must hold from the release it needs on', () => {
    expect([limitOf('follows progress_state', 'observer', '0.3.50', limits), limitOf('follows progress_state', 'observer', '0.3.64', limits)]).toEqual([null, null]);
  });

  it('must hold in the other mode, and on a checkout whose version is unknown', () => {
    expect([limitOf('follows progress_state', 'tap', '0.3.30', limits), limitOf('follows progress_state', 'observer', 'unknown', limits)]).toEqual([null, null]);
  });

  it('compares versions by number, not as text', () => {
    expect([compareReleases('0.3.9', '0.3.30'), compareReleases('0.3.64', '0.3.64'), compareReleases('0.10.0', '0.3.64')]).toEqual([-1, 0, 1]);
  });
});

describe('where a release sends progress_state, read from its source', () => {
  function checkout(progress: string | null): string {
    const dir = mkdtempSync(join(tmpdir(), 'podscope-comfy-src-'));
    if (progress !== null) {
      mkdirSync(join(dir, 'comfy_execution'));
      writeFileSync(join(dir, 'comfy_execution/progress.py'), progress);
    }
    return dir;
  }

  it('nowhere, before comfy_execution/progress.py existed', () => {
    expect(progressStateOf(checkout(null))).toBe('none');
  });

  it('to every client when the call names no client (as 0.3.50 does)', () => {
    expect(progressStateOf(checkout('        self.server_instance.send_sync(\n            "progress_state", {"prompt_id": prompt_id, "nodes": active_nodes}\n        )\n'))).toBe('broadcast');
  });

  it('to the submitter alone when it passes the client id (as 0.3.64 does)', () => {
    expect(progressStateOf(checkout('        self.server_instance.send_sync(\n            "progress_state", {"prompt_id": prompt_id, "nodes": active_nodes}, self.server_instance.client_id\n        )\n'))).toBe('submitter');
  });
});
