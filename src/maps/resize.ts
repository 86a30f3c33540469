/**
 * Bilinear resize of an h x w map to H x W with half-pixel centres, source coordinates clamped at the
 * borders: torch's interpolate(mode='bilinear', align_corners=False) and ONNX Resize
 * (mode linear, coordinate_transformation_mode half_pixel).
 */
export function resizeBilinear(src: Float32Array, h: number, w: number, H: number, W: number): Float32Array {
  const out = new Float32Array(H * W);
  const sy = h / H, sx = w / W;
  const xs0 = new Int32Array(W), xs1 = new Int32Array(W), fx = new Float32Array(W);
  for (let x = 0; x < W; x++) {
    const v = Math.max((x + 0.5) * sx - 0.5, 0);
    const x0 = Math.min(Math.floor(v), w - 1);
    xs0[x] = x0;
    xs1[x] = Math.min(x0 + 1, w - 1);
    fx[x] = v - x0;
  }
  for (let y = 0; y < H; y++) {
    const v = Math.max((y + 0.5) * sy - 0.5, 0);
    const y0 = Math.min(Math.floor(v), h - 1);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = v - y0;
    const r0 = y0 * w, r1 = y1 * w;
    for (let x = 0; x < W; x++) {
      const a = src[r0 + xs0[x]] + (src[r0 + xs1[x]] - src[r0 + xs0[x]]) * fx[x];
      const b = src[r1 + xs0[x]] + (src[r1 + xs1[x]] - src[r1 + xs0[x]]) * fx[x];
      out[y * W + x] = a + (b - a) * fy;
    }
  }
  return out;
}
