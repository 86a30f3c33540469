/** anomalib's rule for the kernel size: 2 * int(4 * sigma + 0.5) + 1, i.e. +-4 sigma. */
export function kernelSizeFor(sigma: number): number {
  return sigma > 0 ? 2 * Math.floor(4 * sigma + 0.5) + 1 : 1;
}

/** Normalised 1-D Gaussian weights of odd length `size`, centred. */
export function gaussianKernel1d(sigma: number, size: number): Float32Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    sum += k[i];
  }
  return Float32Array.from(k, (v) => v / sum);
}

/** Reflect (mirror without repeating the edge) index, as torch's and ONNX's 'reflect' padding. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * Separable Gaussian blur of an h x w map with reflect padding (rows first, then columns). Each row is padded
 * once and the column pass walks whole rows, so the inner loops do no index arithmetic and read memory in order
 * (a tiled image's 500 x 1260 map with a 33-tap kernel: index math per tap made this most of a request's host
 * time). Sums run in double in the same order as the plain double loop, so the result does not depend on it.
 */
export function gaussianBlur(map: Float32Array, h: number, w: number, sigma: number, size: number): Float32Array {
  if (sigma <= 0 || size <= 1) return Float32Array.from(map);
  const k = gaussianKernel1d(sigma, size);
  const r = (size - 1) / 2;
  const tmp = new Float32Array(h * w);
  const padded = new Float32Array(w + 2 * r);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let j = 0; j < padded.length; j++) padded[j] = map[row + reflectIndex(j - r, w)];
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = 0; i < size; i++) acc += k[i] * padded[x + i];
      tmp[row + x] = acc;
    }
  }
  const out = new Float32Array(h * w);
  const acc = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    acc.fill(0);
    for (let i = 0; i < size; i++) {
      const src = reflectIndex(y + i - r, h) * w;
      const ki = k[i];
      for (let x = 0; x < w; x++) acc[x] += ki * tmp[src + x];
    }
    out.set(acc, y * w);
  }
  return out;
}
