import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const tableVariables = [...readme.matchAll(/^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter(Boolean) as string[]);

describe('README', () => {
  it('documents every configuration variable', () => {
    expect(CONFIG_VARIABLES.filter((v) => !tableVariables.includes(v))).toEqual([]);
  });

  it('documents no variable podscope does not read', () => {
    expect(tableVariables.filter((v) => !CONFIG_VARIABLES.includes(v))).toEqual([]);
  });

  it('gives the two commands', () => {
    expect(readme).toContain('npm ci && npx podscope');
    expect(readme).toContain('npm ci && npm test');
  });
});
