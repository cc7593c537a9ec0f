import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const readme = read('README.md');
const DOCS = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);

/** Variables named in the first column of a Markdown table. */
const tableVariables = (text: string) => [...text.matchAll(/^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter(Boolean) as string[]);

/** GitHub's anchor for a heading. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

describe('README', () => {
  it('gives the two commands in its first screen', () => {
    const first = readme.split('\n').slice(0, 40).join('\n');
    expect(first).toContain('npm ci && npx podscope');
    expect(first).toContain('npm ci && npm test');
  });

  it('is read in one sitting: under 300 lines, the reference in docs/', () => {
    expect(readme.split('\n').length).toBeLessThan(300);
  });

  it('names only variables podscope reads', () => {
    const vars = tableVariables(readme);
    expect(vars.length).toBeGreaterThan(0);
    expect(vars.filter((v) => !CONFIG_VARIABLES.includes(v))).toEqual([]);
  });
});

describe('docs/configuration.md', () => {
  const documented = tableVariables(read('docs/configuration.md'));

  it('documents every configuration variable', () => {
    expect(CONFIG_VARIABLES.filter((v) => !documented.includes(v))).toEqual([]);
  });

  it('documents no variable podscope does not read', () => {
    expect(documented.filter((v) => !CONFIG_VARIABLES.includes(v))).toEqual([]);
  });
});

describe('links between the README and docs/', () => {
  it.each(['README.md', ...DOCS])('%s links only to files and headings that exist', (file) => {
    const broken: string[] = [];
    for (const [, target] of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // another site
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const rel = path === '' ? file : join(dirname(file), path);
      if (!existsSync(join(ROOT, rel))) {
        broken.push(`${target}: no file ${rel}`);
        continue;
      }
      const headings = [...read(rel).matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1]!));
      if (anchor !== undefined && rel.endsWith('.md') && !headings.includes(anchor)) broken.push(`${target}: no heading #${anchor} in ${rel}`);
    }
    expect(broken).toEqual([]);
  });
});
