/**
 * Where an output lives on disk, and the checks that keep every path inside ComfyUI's output and
 * temp directories: no `..` segment, no absolute path, no backslash, no NUL, and after resolving
 * symlinks the file must still be inside the directory.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';

export type ArtifactType = 'output' | 'temp';

/** ComfyUI's temp directory sits beside its output directory (`<comfy>/temp`). */
export function directoryFor(outputDir: string, type: ArtifactType): string {
  return type === 'output' ? resolve(outputDir) : join(dirname(resolve(outputDir)), 'temp');
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
