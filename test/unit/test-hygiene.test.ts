/**
 * Tests that cannot pass by accident: no assertion is guarded by an `if` (a guard that is never
 * true leaves a test that asserts nothing), and a golden file is only ever written on request.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const TEST = fileURLToPath(new URL('..', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? (f === 'fixtures' ? [] : tsFiles(p)) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('the test suites', () => {
  it('guard no assertion with an if: each expectation runs whatever the data', () => {
    const guarded = tsFiles(TEST).flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) => (/\bif\s*\(.*\)\s*expect\(/.test(line) && !line.includes('hygiene:') ? [`${relative(TEST, f)}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(guarded).toEqual([]);
  });

  it('write a golden file only with UPDATE_GOLDEN=1, so a deleted one fails', () => {
    const golden = readFileSync(join(TEST, 'unit/golden.test.ts'), 'utf8');
    const writes = [...golden.matchAll(/if \(([^)]*)\)\s*\{\s*\n\s*mkdirSync[^\n]*\n\s*writeFileSync/g)].map((m) => m[1]);
    expect(writes).toEqual(["process.env.UPDATE_GOLDEN === '1'"]);
    expect(golden).toMatch(/if \(!existsSync\(path\)\) expect\.fail\(/);
  });
});
