/** The 'jet' colour map as a 256-entry RGB table (blue for low values, red for high). */
export const JET: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  const c = (v: number) => Math.round(255 * Math.min(1, Math.max(0, v)));
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    lut[i * 3] = c(1.5 - Math.abs(4 * x - 3));
    lut[i * 3 + 1] = c(1.5 - Math.abs(4 * x - 2));
    lut[i * 3 + 2] = c(1.5 - Math.abs(4 * x - 1));
  }
  return lut;
})();

/** Values already scaled to [0, 1] (clamped) -> interleaved RGB. */
export function colorize(values: Float32Array, lut: Uint8Array = JET): Uint8Array {
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const k = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
    out[i * 3] = lut[k * 3];
    out[i * 3 + 1] = lut[k * 3 + 1];
    out[i * 3 + 2] = lut[k * 3 + 2];
  }
  return out;
}
