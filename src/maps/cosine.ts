/** Same epsilon as torch.nn.functional.cosine_similarity (1.13): w12 / sqrt(max(w1 * w2, eps^2)). */
export const COSINE_EPS = 1e-8;

/**
 * 1 - cosine similarity along channels, per location, of two [C, h, w] feature maps (planar float32),
 * with torch's epsilon rule: dot / sqrt(max(|t|^2 |s|^2, eps^2)).
 */
export function cosineDistanceMap(t: Float32Array, s: Float32Array, c: number, h: number, w: number): Float32Array {
  const plane = h * w;
  if (t.length !== c * plane || s.length !== c * plane) throw new RangeError('feature maps do not match [C, h, w]');
  const out = new Float32Array(plane);
  const eps2 = COSINE_EPS * COSINE_EPS;
  for (let i = 0; i < plane; i++) {
    let dot = 0, tt = 0, ss = 0;
    for (let k = 0; k < c; k++) {
      const a = t[k * plane + i], b = s[k * plane + i];
      dot += a * b;
      tt += a * a;
      ss += b * b;
    }
    out[i] = 1 - dot / Math.sqrt(Math.max(tt * ss, eps2));
  }
  return out;
}
