/**
 * One source for the CLI's words: `--help` (USAGE) and the README's CLI table are held to the
 * commands and options the parser takes (OPTIONS); the error codes the server can send are held
 * to the ones docs/api.md lists.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPTIONS, USAGE } from '../../src/cli/main.js';

const read = (rel: string) => readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');
const CLIENT_OPTIONS = ['url', 'token', 'json'];
const COMMANDS = Object.keys(OPTIONS).filter((c) => c !== 'help');
const flagsIn = (text: string) => new Set([...text.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!));
const allOptions = new Set([...Object.values(OPTIONS).flat(), 'help']);

describe('--help', () => {
  it.each(COMMANDS)('names the command %s and every option it takes', (command) => {
    const line = USAGE.split('\n').find((l) => new RegExp(`^  podscope (\\[)?${command}\\b`).test(l));
    expect(line, `no usage line for ${command}`).toBeDefined();
    const own = OPTIONS[command]!.filter((o) => !CLIENT_OPTIONS.includes(o) && o !== 'version');
    const block = USAGE.slice(USAGE.indexOf(line!)).split('\n  podscope ')[0]!;
    expect(own.filter((o) => !flagsIn(block).has(o))).toEqual([]);
  });

  it('names no option the parser does not take', () => {
    expect([...flagsIn(USAGE)].filter((f) => !allOptions.has(f))).toEqual([]);
  });
});

describe('the README’s CLI table', () => {
  const readme = read('README.md');
  const rows = [...readme.matchAll(/^\| `podscope (\w+)([^`]*)` \|/gm)].map((m) => ({ command: m[1]!, options: [...flagsIn(m[2]!)] }));

  it('has a row for every client command', () => {
    const clients = COMMANDS.filter((c) => !['serve', 'demo'].includes(c));
    expect(rows.map((r) => r.command).sort()).toEqual(clients.sort());
  });

  it('gives each command only options it takes, and every one of its own', () => {
    for (const row of rows) {
      const own = OPTIONS[row.command]!.filter((o) => !CLIENT_OPTIONS.includes(o));
      expect({ command: row.command, options: row.options.sort() }).toEqual({ command: row.command, options: own.sort() });
    }
  });
});

describe('the error codes', () => {
  it('each code the server can send is listed in docs/api.md', () => {
    const codes = [...read('src/http/errors.ts').matchAll(/^\s*\| '([A-Z_]+)'/gm)].map((m) => m[1]!);
    expect(codes.length).toBeGreaterThan(5);
    const docs = read('docs/api.md');
    expect(codes.filter((c) => !docs.includes(`\`${c}\``))).toEqual([]);
  });
});
