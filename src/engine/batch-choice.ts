/** Time per image at one batch size, measured on the session at warm-up. */
export interface BatchTiming {
  batch: number;
  msPerImage: number;
}

/**
 * The largest batch worth forming: the smallest measured size whose time per image is within `tolerance` of the
 * best one. A larger batch that is no faster per image only adds latency (each image waits for the whole batch),
 * and on a CPU whose cores the session already fills, large batches can be slower per image than small ones.
 */
export function chooseMaxBatch(timings: BatchTiming[], tolerance = 0.05): number {
  if (timings.length === 0) throw new RangeError('no batch timings');
  const best = Math.min(...timings.map((t) => t.msPerImage));
  return Math.min(...timings.filter((t) => t.msPerImage <= best * (1 + tolerance)).map((t) => t.batch));
}

/** Median of a few timings: one slow run (a page fault, a neighbour on the machine) does not decide. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
