// Module hooks for record-modules.mjs: runs on the loader thread, appends each resolved URL.
import { appendFileSync } from 'node:fs';

let file = null;

export async function initialize(data) {
  file = data?.file ?? null;
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (file) appendFileSync(file, `${result.url}\n`);
  return result;
}
