/**
 * Waiting in tests: on a condition, with a generous deadline, never on a fixed sleep followed by an
 * assertion (CI's machine has two cores and is often busy).
 */

/** Polls `probe` until it returns a value (not undefined, false or null); fails after `ms`. */
export async function until<T>(probe: () => Promise<T | undefined | false | null> | T | undefined | false | null, ms = 10_000, every = 20): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Whether a process is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
