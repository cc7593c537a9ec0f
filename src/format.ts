/** Small formatting helpers shared by state, collectors and views. */

/** An ms epoch as an ISO string; null stays null. */
export function iso(t: number): string;
export function iso(t: number | null): string | null;
export function iso(t: number | null): string | null {
  return t === null ? null : new Date(t).toISOString();
}

/** `n` rounded to `digits` decimal places. */
export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
