/**
 * The page's files (web/ and uPlot), as podscope loads them at start-up: light, self-contained,
 * and served with the right types.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadWebAssets } from '../../src/sources/web-assets.js';
import { LOOPBACK, testPod } from '../helpers/pod.js';

const assets = loadWebAssets();

describe('the page’s files', () => {
  it('weigh under 200 KB compressed, all together', () => {
    const total = gzipSync(assets.index).length + [...assets.files.values()].reduce((n, f) => n + gzipSync(f.body).length, 0);
    expect(total).toBeLessThan(200 * 1024);
  });

  it('name only files podscope serves, and nothing on another host', () => {
    const refs = [...assets.index.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    const own = refs.filter((ref) => !ref.startsWith('data:'));
    for (const ref of own) expect(ref).toMatch(/^\/(assets\/[\w.-]+)?$|^\/logout$|^\/openapi\.json$/);
    const assetRefs = own.filter((ref) => ref.startsWith('/assets/'));
    expect(assetRefs.length).toBeGreaterThan(0);
    expect(assetRefs.filter((ref) => !assets.files.has(ref.slice('/assets/'.length)))).toEqual([]);
    expect(assets.files.get('app.js')!.body.toString()).not.toMatch(/https?:\/\//);
  });

  it('hold no inline script or style, which the page’s policy forbids', () => {
    expect(assets.index).not.toMatch(/<script>|<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son\w+=/);
  });
});

describe('serving them', () => {
  const TOKEN = 'tok_abcdef123456';

  it('serves each asset with its type to anyone, and answers an unknown one 404 only to a reader of the pod', async () => {
    const { app } = testPod({ PODSCOPE_TOKEN: TOKEN }, undefined, { assets });
    for (const [name, type] of [['app.js', 'text/javascript; charset=utf-8'], ['uplot.css', 'text/css; charset=utf-8']] as const) {
      const res = await app.request(`/assets/${name}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect((await app.request('/assets/nope.js')).status).toBe(404);
    expect((await app.request('/assets/../debug/status')).status).toBe(401);
  });

  it('sends a browser without a session from / to the login page', async () => {
    const res = await testPod({ PODSCOPE_TOKEN: TOKEN }, undefined, { assets }).app.request('/');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2F');
  });

  it('serves the page with its policy to a client that may read the pod', async () => {
    const res = await testPod({}, undefined, { assets }).app.request('/', {}, LOOPBACK);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self'/);
    expect(await res.text()).toContain('<script src="/assets/app.js" defer></script>');
  });

  it('answers 503 for the page when podscope was started without its files', async () => {
    expect((await testPod().app.request('/', {}, LOOPBACK)).status).toBe(503);
  });
});
