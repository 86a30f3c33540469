/**
 * Polls `probe` until it returns something other than undefined or false, and returns that. The bound is a
 * deadline for a condition, not a speed figure: generous, so that a loaded machine only makes the wait longer.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, { timeoutMs = 120_000, everyMs = 10 } = {}): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    if (performance.now() > deadline) throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `work`'s value, or `fallback` once `ms` have passed; the bound's timer is cleared so it keeps no process alive. */
export async function within<T, F>(work: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let bound: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<F>((r) => (bound = setTimeout(() => r(fallback), ms)))]);
  } finally {
    clearTimeout(bound);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A gauge's value for one model in a Prometheus text exposition (NaN when absent). */
export function gaugeOf(metrics: string, name: string, model: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{model="${model}"}`));
  return line ? Number(line.split(' ').pop()) : NaN;
}
