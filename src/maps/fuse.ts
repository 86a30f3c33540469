import type { Reduction } from '../bundle/manifest.js';

export interface PathTerm {
  map: Float32Array;
  offset: number;
  scale: number;
  weight: number;
}

/** sum over paths of (map - offset) * weight / scale; maps share one size. */
export function fuseMaps(terms: PathTerm[]): Float32Array {
  const out = new Float32Array(terms[0].map.length);
  for (const t of terms) {
    if (t.weight === 0) continue;
    const gain = t.weight / t.scale;
    for (let i = 0; i < out.length; i++) out[i] += (t.map[i] - t.offset) * gain;
  }
  return out;
}

/** The image score of a fused map: its maximum, or the mean of its k largest values. */
export function reduceScore(map: Float32Array, reduction: Reduction): number {
  if (reduction.kind === 'max') {
    let m = -Infinity;
    for (let i = 0; i < map.length; i++) if (map[i] > m) m = map[i];
    return m;
  }
  const k = Math.min(reduction.k, map.length);
  const sorted = Float32Array.from(map).sort();
  let sum = 0;
  for (let i = map.length - k; i < map.length; i++) sum += sorted[i];
  return sum / k;
}
