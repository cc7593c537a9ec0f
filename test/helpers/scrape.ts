/** Reading an exposition in tests. */
import type { Registry } from 'prom-client';

/** Every sample line of a scrape, as series (`name{labels}`) → value. */
export async function scrape(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
