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
 * Connected components (8-connectivity) of the pixels of `map` at or above `threshold`, largest first.
 * Iterative flood fill: no recursion depth limit on large regions.
 */
export function connectedRegions(map: Float32Array, w: number, h: number, threshold: number): PixelRegion[] {
  const label = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  const regions: PixelRegion[] = [];
  for (let start = 0; start < w * h; start++) {
    if (label[start] !== 0 || !(map[start] >= threshold)) continue;
    const id = regions.length + 1;
    const r: PixelRegion = { x0: w, y0: h, x1: 0, y1: 0, area: 0, peak: -Infinity };
    let top = 0;
    stack[top++] = start;
    label[start] = id;
    while (top > 0) {
      const p = stack[--top];
      const x = p % w, y = (p - x) / w;
      r.area++;
      if (map[p] > r.peak) r.peak = map[p];
      if (x < r.x0) r.x0 = x;
      if (y < r.y0) r.y0 = y;
      if (x + 1 > r.x1) r.x1 = x + 1;
      if (y + 1 > r.y1) r.y1 = y + 1;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= w) continue;
          const q = ny * w + nx;
          if (label[q] === 0 && map[q] >= threshold) {
            label[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
    regions.push(r);
  }
  return regions.sort((a, b) => b.area - a.area);
}
