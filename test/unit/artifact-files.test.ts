/**
 * Output files on disk: where ComfyUI keeps them, which names are refused, and that nothing outside
 * its directories can be reached (real files and symlinks in a temporary directory).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contentTypeFor, directoryFor, nameProblem, resolveInside, tempDirFor } from '../../src/sources/artifact-files.js';

describe("ComfyUI's temp directory", () => {
  it('is COMFYUI_TEMP_DIR when set', () => {
    expect(tempDirFor({ tempDir: '/data/tmp', argv: null })).toBe('/data/tmp');
  });

  it('is <temp-directory>/temp with --temp-directory, in either spelling', () => {
    expect(tempDirFor({ argv: ['main.py', '--temp-directory', '/scratch'] })).toBe('/scratch/temp');
    expect(tempDirFor({ argv: ['main.py', '--temp-directory=/scratch'] })).toBe('/scratch/temp');
  });

  it('is <base-directory>/temp with --base-directory', () => {
    expect(tempDirFor({ argv: ['main.py', '--base-directory', '/workspace/comfy'] })).toBe('/workspace/comfy/temp');
  });

  it("is the output directory's sibling when ComfyUI runs with its default layout", () => {
    expect(tempDirFor({ outputDir: '/workspace/ComfyUI/output', argv: ['main.py', '--listen'] })).toBe('/workspace/ComfyUI/temp');
  });

  it('is unknown when the output directory was moved, a path is relative, or the command line is not known yet', () => {
    expect(tempDirFor({ outputDir: '/out', argv: ['main.py', '--output-directory', '/out'] })).toBeNull();
    expect(tempDirFor({ argv: ['main.py', '--temp-directory', 'rel'] })).toBeNull();
    expect(tempDirFor({ outputDir: '/out', argv: null })).toBeNull();
  });

  it('the output directory is COMFYUI_OUTPUT_DIR, or unknown', async () => {
    expect(await directoryFor({ outputDir: '/out', argv: null }, 'output')).toBe('/out');
    expect(await directoryFor({ argv: null }, 'output')).toBeNull();
  });

  it("the output directory is read from ComfyUI's --output-directory or --base-directory when it exists here", async () => {
    const here = mkdtempSync(join(tmpdir(), 'podscope-out-'));
    expect(await directoryFor({ argv: ['main.py', '--output-directory', here] }, 'output')).toBe(here);
    mkdirSync(join(here, 'output'));
    expect(await directoryFor({ argv: ['main.py', `--base-directory=${here}`] }, 'output')).toBe(join(here, 'output'));
    // Written by a ComfyUI in another container: podscope cannot read it, so ComfyUI's /view serves it.
    expect(await directoryFor({ argv: ['main.py', '--output-directory', '/nowhere/podscope-test/out'] }, 'output')).toBeNull();
    expect(await directoryFor({ argv: ['main.py', '--output-directory', 'relative/out'] }, 'output')).toBeNull();
    rmSync(here, { recursive: true, force: true });
  });
});

describe('names refused before any disk access', () => {
  it.each([
    ['', '', 'filename must not be empty'],
    ['a\0.png', '', 'filename must not contain NUL'],
    ['a.png', 'x\\y', 'subfolder must not contain a backslash'],
    ['/etc/passwd', '', 'filename must be relative'],
    ['a.png', 'C:/Windows', 'subfolder must be relative'],
    ['a.png', '../..', 'subfolder must not contain "." or ".." segments'],
    ['..', '', 'filename must not contain "." or ".." segments'],
    ['a.png', 'runs/./x', 'subfolder must not contain "." or ".." segments'],
    ['sub/a.png', '', 'filename must not contain "/" (use subfolder)'],
    ['x'.repeat(1025), '', 'filename is too long'],
  ])('%j in %j: %s', (filename, subfolder, problem) => {
    expect(nameProblem(filename, subfolder)).toBe(problem);
  });

  it('accepts a plain name in a nested subfolder', () => {
    expect(nameProblem('ComfyUI_00001_.png', 'runs/2026-11-23')).toBeNull();
  });
});

describe('resolving a file inside a directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'podscope-files-'));
  const out = join(root, 'output');
  mkdirSync(join(out, 'runs'), { recursive: true });
  writeFileSync(join(out, 'runs', 'a.png'), 'png!');
  writeFileSync(join(root, 'secret.txt'), 'do not serve');
  symlinkSync(join(root, 'secret.txt'), join(out, 'escape.png'));
  symlinkSync(join(out, 'runs', 'a.png'), join(out, 'alias.png'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('gives the real path, size and mtime of a file that is there', async () => {
    expect(await resolveInside(out, 'runs', 'a.png')).toMatchObject({ path: join(out, 'runs', 'a.png'), size: 4 });
  });

  it('follows a symlink that stays inside', async () => {
    expect((await resolveInside(out, '', 'alias.png'))?.path).toBe(join(out, 'runs', 'a.png'));
  });

  it('refuses a symlink that leads outside', async () => {
    expect(await resolveInside(out, '', 'escape.png')).toBeNull();
  });

  it('is nothing for a missing file, a directory, or a missing base', async () => {
    expect(await resolveInside(out, 'runs', 'nope.png')).toBeNull();
    expect(await resolveInside(out, '', 'runs')).toBeNull();
    expect(await resolveInside(join(root, 'missing'), '', 'a.png')).toBeNull();
  });
});

describe('content types', () => {
  it.each([
    ['a.PNG', 'image/png'],
    ['clip.mp4', 'video/mp4'],
    ['mesh.glb', 'model/gltf-binary'],
    ['page.html', 'application/octet-stream'],
    ['x.svg', 'application/octet-stream'],
    ['script.js', 'application/octet-stream'],
    ['noext', 'application/octet-stream'],
  ])('%s is served as %s (nothing a browser would run)', (name, type) => {
    expect(contentTypeFor(name)).toBe(type);
  });
});
