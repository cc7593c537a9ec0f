/**
 * The layering of src/ (test/helpers/layering.ts has the rules), held on src/ itself, and the
 * checker held to finding each kind of wrong edge, put into a temporary copy of src/.
 */
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayering, describeOffence, importsOf, type Offence } from '../helpers/layering.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

describe('the layering of src/', () => {
  it('breaks no rule: every import goes the way the layers allow, exists, closes no cycle, and no reader does I/O', () => {
    expect(checkLayering(SRC).map(describeOffence)).toEqual([]);
  });
});

describe('the layering checker', () => {
  let copy: string | null = null;
  afterEach(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
    copy = null;
  });

  /** A copy of src/ with `text` appended to `file` (or written as a new file), and `also` written, checked. */
  function withChange(file: string, text: string, opts: { create?: boolean; also?: [string, string] } = {}): Offence[] {
    copy = mkdtempSync(join(tmpdir(), 'layering-'));
    cpSync(SRC, copy, { recursive: true });
    (opts.create ? writeFileSync : appendFileSync)(join(copy, file), `\n${text}\n`);
    if (opts.also) writeFileSync(join(copy, opts.also[0]), opts.also[1]);
    return checkLayering(copy);
  }

  const found = (offences: Offence[]) => offences.map((o) => ({ file: o.file, rule: o.rule }));

  it.each([
    ['a single-quoted import', `import { GpuCollector } from '../collectors/gpu.js';`],
    ['a double-quoted import', `import { GpuCollector } from "../collectors/gpu.js";`],
    ['an import over several lines', `import {\n  GpuCollector,\n} from\n  '../collectors/gpu.js';`],
    ['a type-only import', `import type { GpuCollector } from '../collectors/gpu.js';`],
    ['a re-export', `export { GpuCollector } from '../collectors/gpu.js';`],
    ['a side-effect import', `import '../collectors/gpu.js';`],
    ['a dynamic import', `export const later = () => import("../collectors/gpu.js");`],
    ['a dynamic import in backquotes', 'export const later = () => import(`../collectors/gpu.js`);'],
    ['a require', `export const gpu = require('../collectors/gpu.js');`],
  ])('names the file and the layering rule for %s from state/ into collectors/', (_what, line) => {
    expect(found(withChange('state/host.ts', line))).toContainEqual({ file: 'state/host.ts', rule: 'layering' });
  });

  it.each([
    ['bare fs', `import { readFileSync } from 'fs';`],
    ['node:fs', `import { readFileSync } from "node:fs";`],
    ['bare net', `import { connect } from 'net';`],
    ['child_process', `import { spawn } from 'node:child_process';`],
    ['http', `import * as http from 'http';`],
    ['a dynamic import of fs/promises', `export const io = () => import('fs/promises');`],
    ['a require of child_process', `export const cp = require("child_process");`],
    ['the global fetch', `export const go = () => fetch('http://127.0.0.1/');`],
  ])('names the file and the I/O rule for %s in a view', (_what, line) => {
    expect(found(withChange('views/status.ts', line))).toContainEqual({ file: 'views/status.ts', rule: 'io' });
  });

  it('lets a reader name a type from an I/O module: types are erased', () => {
    expect(withChange('http/respond.ts', `import type { ServerResponse } from 'node:http';\nimport { type IncomingMessage } from 'http';`)).toEqual([]);
  });

  it('does not take an import written in a comment for one', () => {
    expect(withChange('views/status.ts', `// import { readFileSync } from 'fs';\n/* import('../collectors/gpu.js') */`)).toEqual([]);
  });

  it('treats config and logging as layers, not as leaves every layer may take', () => {
    expect(found(withChange('views/status.ts', `import type { Config } from '../config.js';`))).toContainEqual({ file: 'views/status.ts', rule: 'layering' });
    expect(found(withChange('state/host.ts', `import type { Logger } from '../logger.js';`))).toContainEqual({ file: 'state/host.ts', rule: 'layering' });
  });

  it('names a top-level file it cannot classify', () => {
    expect(found(withChange('helpers.ts', 'export const x = 1;', { create: true }))).toContainEqual({ file: 'helpers.ts', rule: 'unclassified' });
  });

  it('names an import of a file that does not exist', () => {
    expect(found(withChange('state/host.ts', `import { x } from './nowhere.js';`))).toContainEqual({ file: 'state/host.ts', rule: 'missing' });
  });

  it('names two modules that import each other', () => {
    const offences = withChange('format.ts', `import { round as again } from './shared/loop.js';`, { also: ['shared/loop.ts', `import { round } from '../format.js';\nexport { round };`] });
    expect(found(offences)).toContainEqual({ file: 'format.ts', rule: 'cycle' });
  });

  it.each([
    ['a route', 'http/routes/debug.ts', `import type { ComfyState } from '../../state/comfy.js';`],
    ['a view', 'views/status.ts', `import { PodState } from '../state/pod.js';`],
    ['a metric', 'metrics/gpu.ts', `export type Writable = import('../state/gpu.js').GpuState;`],
  ])('names %s that takes a writable part of the state instead of its read-only interface', (_what, file, line) => {
    expect(found(withChange(file, line))).toContainEqual({ file, rule: 'reader' });
  });

  it('names a collector that composes the pod itself', () => {
    expect(found(withChange('collectors/host.ts', 'export const wire = (state: { readiness: { set(n: string, f: () => unknown): void } }) => state.readiness.set("x", () => 1);'))).toContainEqual({ file: 'collectors/host.ts', rule: 'composition' });
  });

  it('reads the line of each import, any way it is written', () => {
    const edges = importsOf(`import a from 'a';\nimport type { B } from "b";\nexport { c } from 'c';\nconst d = await import(\`d\`);\nconst e = require("e");\nimport 'f';`);
    expect(edges.map((e) => [e.spec, e.typeOnly, e.line])).toEqual([
      ['a', false, 1],
      ['b', true, 2],
      ['c', false, 3],
      ['f', false, 6],
      ['d', false, 4],
      ['e', false, 5],
    ]);
  });
});
