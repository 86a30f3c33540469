import type { Placement } from '../image/preprocess.js';

/** The window `w` of a row-major map `width` pixels wide, as its own row-major map; the map itself when `w` covers it. */
export function cropMap<T extends Float32Array | Uint8Array>(map: T, width: number, w: Placement): T {
  if (w.left === 0 && w.top === 0 && w.width === width && w.width * w.height === map.length) return map;
  const out = new (map.constructor as { new (n: number): T })(w.width * w.height);
  for (let y = 0; y < w.height; y++) out.set(map.subarray((w.top + y) * width + w.left, (w.top + y) * width + w.left + w.width), y * w.width);
  return out;
}
