/** Log levels and the text that means a GPU ran out of memory: shared by the log parsers, the log store and its routes. */

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export const LEVELS: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
export const LEVEL_RANK: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

const OOM = /OutOfMemoryError|CUDA out of memory|Allocation on device|Got an OOM, unloading all loaded models/;

export function isOomText(text: string): boolean {
  return OOM.test(text);
}
