/**
 * What ComfyUI's command line (`/system_stats` → `system.argv`) says about where it writes: read
 * the way ComfyUI reads its own arguments, with no file system access.
 */

/** The value of `--name V` or `--name=V` in a command line. */
export function argValue(argv: readonly string[], name: string): string | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === name && i + 1 < argv.length) return argv[i + 1]!;
    if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
  }
  return null;
}

const absolute = (p: string) => p.startsWith('/');
const joined = (dir: string, leaf: string) => `${dir.replace(/\/+$/, '')}/${leaf}`;

/**
 * ComfyUI's output directory from its command line: `--output-directory`, else
 * `<--base-directory>/output`; null when neither is given as an absolute path (ComfyUI then writes
 * under its own folder, which its command line does not name).
 */
export function outputDirFromArgv(argv: readonly string[] | null): string | null {
  if (!argv) return null;
  const out = argValue(argv, '--output-directory');
  if (out !== null) return absolute(out) ? out : null;
  const base = argValue(argv, '--base-directory');
  return base !== null && absolute(base) ? joined(base, 'output') : null;
}
