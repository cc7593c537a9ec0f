/**
 * Where an output lives on disk, and the checks that keep every path inside ComfyUI's output and
 * temp directories: no `..` segment, no absolute path, no backslash, no NUL, and after resolving
 * symlinks the file must still be inside the directory.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { argValue, outputDirFromArgv } from '../shared/comfy-argv.js';

export type ArtifactType = 'output' | 'temp';

export interface ComfyDirs {
  /** COMFYUI_OUTPUT_DIR (or the instance's entry in COMFYUI_OUTPUT_DIRS), else read from argv. */
  outputDir?: string | undefined;
  /** COMFYUI_TEMP_DIR: the temp directory itself. */
  tempDir?: string | undefined;
  /** ComfyUI's command line (from /system_stats), null until known. */
  argv: readonly string[] | null;
}

/**
 * Where ComfyUI keeps temp outputs (PreviewImage), or null when podscope cannot tell (then
 * ComfyUI's /view serves them). ComfyUI puts them in `<temp-directory>/temp` with
 * `--temp-directory`, `<base-directory>/temp` with `--base-directory`, else `<ComfyUI>/temp`,
 * which is the output directory's sibling only when `--output-directory` was not given.
 */
export function tempDirFor(d: ComfyDirs): string | null {
  if (d.tempDir) return resolve(d.tempDir);
  if (!d.argv) return null;
  const temp = argValue(d.argv, '--temp-directory');
  if (temp !== null) return isAbsolute(temp) ? join(temp, 'temp') : null;
  const base = argValue(d.argv, '--base-directory');
  if (base !== null) return isAbsolute(base) ? join(base, 'temp') : null;
  if (d.outputDir && argValue(d.argv, '--output-directory') === null) return join(dirname(resolve(d.outputDir)), 'temp');
  return null;
}

/**
 * The directory holding outputs of `type`, or null when podscope cannot read it itself (ComfyUI's
 * /view serves the file then). One given in the configuration is trusted; one read from ComfyUI's
 * command line counts only when it exists here (ComfyUI may run in another container).
 */
export async function directoryFor(d: ComfyDirs, type: ArtifactType): Promise<string | null> {
  if (type === 'output' && d.outputDir) return resolve(d.outputDir);
  const dir = type === 'temp' ? tempDirFor(d) : outputDirFromArgv(d.argv);
  if (dir === null) return null;
  if (type === 'temp' && d.tempDir) return dir;
  try {
    return (await stat(dir)).isDirectory() ? resolve(dir) : null;
  } catch {
    return null;
  }
}

/** Why a filename or subfolder is refused, or null when it is acceptable. */
export function nameProblem(filename: string, subfolder: string): string | null {
  if (filename === '') return 'filename must not be empty';
  for (const [what, v] of [
    ['filename', filename],
    ['subfolder', subfolder],
  ] as const) {
    if (v.includes('\0')) return `${what} must not contain NUL`;
    if (v.includes('\\')) return `${what} must not contain a backslash`;
    if (v.startsWith('/') || /^[A-Za-z]:/.test(v)) return `${what} must be relative`;
    if (v.split('/').some((seg) => seg === '..' || seg === '.')) return `${what} must not contain "." or ".." segments`;
    if (v.length > 1024) return `${what} is too long`;
  }
  if (filename.includes('/')) return 'filename must not contain "/" (use subfolder)';
  return null;
}

export interface FileFacts {
  path: string;
  size: number;
  mtime: Date;
}

/** The file's real path and facts, when it exists inside `base`; null otherwise (missing or escaping). */
export async function resolveInside(base: string, subfolder: string, filename: string): Promise<FileFacts | null> {
  let root: string;
  try {
    root = await realpath(base);
  } catch {
    return null;
  }
  const candidate = join(root, subfolder, filename);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return null;
  }
  if (!real.startsWith(root + sep)) return null;
  try {
    const st = await stat(real);
    if (!st.isFile()) return null;
    return { path: real, size: st.size, mtime: st.mtime };
  } catch {
    return null;
  }
}

const TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mov: 'video/quicktime',
  mkv: 'video/x-matroska',
  flac: 'audio/flac',
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  opus: 'audio/opus',
  glb: 'model/gltf-binary',
  gltf: 'model/gltf+json',
  obj: 'model/obj',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  safetensors: 'application/octet-stream',
};

/** A content type by extension; anything a browser would run (HTML, JS, SVG) is served as bytes. */
export function contentTypeFor(filename: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(filename)?.[1]?.toLowerCase() ?? '';
  return TYPES[ext] ?? 'application/octet-stream';
}
