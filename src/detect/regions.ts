export interface PixelRegion {
  /** Bounding box in map pixels, inclusive-exclusive. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  area: number;
  peak: number;
}

/**
 * Labels the 8-connected components of the set pixels (as scipy.ndimage.label with a 3x3 structure).
 * labels[i] is 0 for unset pixels, else 1..count. Iterative flood fill: no recursion limit on large regions.
 */
export function labelComponents(on: Uint8Array, w: number, h: number): { labels: Int32Array; count: number } {
  const labels = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  let count = 0;
  for (let start = 0; start < w * h; start++) {
    if (!on[start] || labels[start] !== 0) continue;
    const id = ++count;
    let top = 0;
    stack[top++] = start;
    labels[start] = id;
    while (top > 0) {
      const p = stack[--top];
      const x = p % w, y = (p - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= w) continue;
          const q = ny * w + nx;
          if (on[q] && labels[q] === 0) {
            labels[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
  }
  return { labels, count };
}

/** The regions of the pixels of `map` at or above `threshold`, largest first. */
export function connectedRegions(map: Float32Array, w: number, h: number, threshold: number): PixelRegion[] {
  const on = new Uint8Array(map.length);
  for (let i = 0; i < map.length; i++) on[i] = map[i] >= threshold ? 1 : 0;
  const { labels, count } = labelComponents(on, w, h);
  const regions: PixelRegion[] = Array.from({ length: count }, () => ({ x0: w, y0: h, x1: 0, y1: 0, area: 0, peak: -Infinity }));
  for (let p = 0; p < labels.length; p++) {
    if (!labels[p]) continue;
    const r = regions[labels[p] - 1];
    const x = p % w, y = (p - x) / w;
    r.area++;
    if (map[p] > r.peak) r.peak = map[p];
    if (x < r.x0) r.x0 = x;
    if (y < r.y0) r.y0 = y;
    if (x + 1 > r.x1) r.x1 = x + 1;
    if (y + 1 > r.y1) r.y1 = y + 1;
  }
  return regions.sort((a, b) => b.area - a.area);
}
