/**
 * The page's files, read once at start-up (a route never reads a file): podscope's own page from
 * web/ and uPlot's chart library from its package. Each asset keeps its bytes and content type.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WebAsset, WebAssets } from '../shared/web-assets.js';

export type { WebAsset, WebAssets } from '../shared/web-assets.js';

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));

export function loadWebAssets(): WebAssets {
  const uplot = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  const file = (path: string, contentType: string): WebAsset => ({ body: readFileSync(path), contentType });
  return {
    index: readFileSync(join(WEB, 'index.html'), 'utf8'),
    files: new Map([
      ['app.js', file(join(WEB, 'app.js'), 'text/javascript; charset=utf-8')],
      ['app.css', file(join(WEB, 'app.css'), 'text/css; charset=utf-8')],
      ['uplot.js', file(join(uplot, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
      ['uplot.css', file(join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8')],
    ]),
  };
}
