/**
 * Tiling (bundles with `input.fit: tile`): an image at the inspection scale is cut into tiles of the model's input
 * size, each tile is scored like a whole image, and the tiles' maps are blended back into one map of the image.
 * Mirrors models/pipeline/mixdistill/tiles.py, which the pipeline calibrates and checks parity with.
 */

export type Blend = 'mean' | 'feather';

export interface TileSpec {
  /** Factor from the original image to the inspection scale (1: native pixels). */
  scale: number;
  /** Pixels (at the inspection scale) that neighbouring tiles share, at least. */
  overlap: number;
  blend: Blend;
}

export interface Tile {
  left: number;
  top: number;
}

/** The image's size at the inspection scale (at least one pixel a side). */
export function scaledSize(width: number, height: number, scale: number): { width: number; height: number } {
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Start offsets of the fewest tiles of length `tile` that cover [0, length) with neighbours sharing at least
 * `overlap` pixels, spread evenly from 0 to length - tile (anomalib's tiler steps by a fixed stride and leaves
 * the last tile short or padded; even spreading keeps every tile inside the image). A length shorter than a tile
 * gets one tile at 0: the image is mirror-extended to the tile and the extension is cropped from the map.
 */
export function tileStarts(length: number, tile: number, overlap: number): number[] {
  if (!(tile > 0 && overlap >= 0 && overlap < tile)) throw new RangeError(`overlap ${overlap} must be in [0, ${tile})`);
  if (length <= tile) return [0];
  const n = Math.ceil((length - overlap) / (tile - overlap));
  return Array.from({ length: n }, (_, i) => Math.round((i * (length - tile)) / (n - 1)));
}

/** Row-major tiles of tileW x tileH over a width x height image (at the inspection scale). */
export function tileGrid(width: number, height: number, tileW: number, tileH: number, overlap: number): Tile[] {
  const xs = tileStarts(width, tileW, overlap), ys = tileStarts(height, tileH, overlap);
  return ys.flatMap((top) => xs.map((left) => ({ left, top })));
}

/**
 * Each tile pixel's weight in the blend. mean: 1 everywhere (overlaps averaged). feather: a linear ramp over
 * `overlap` pixels from each edge (the product of the two axes' ramps), so a tile's border, where its maps
 * saw the least context, counts least where another tile covers the same place; weights stay above 0, so a
 * place only one tile covers keeps that tile's value.
 */
export function tileWeights(tileW: number, tileH: number, overlap: number, blend: Blend): Float32Array {
  const w = new Float32Array(tileW * tileH);
  if (blend === 'mean' || overlap === 0) return w.fill(1);
  const ramp = (i: number, n: number) => Math.min(1, (Math.min(i, n - 1 - i) + 1) / (overlap + 1));
  for (let y = 0; y < tileH; y++) {
    const ry = ramp(y, tileH);
    for (let x = 0; x < tileW; x++) w[y * tileW + x] = ry * ramp(x, tileW);
  }
  return w;
}

/**
 * The tiles' maps (each tileW x tileH, row-major) blended into one width x height map: per pixel the weighted
 * mean of every tile that covers it. Tile pixels past the image (a mirror extension) are dropped.
 */
export function blendTiles(
  maps: Float32Array[],
  tiles: Tile[],
  tileW: number,
  tileH: number,
  width: number,
  height: number,
  weights: Float32Array,
): Float32Array {
  if (maps.length !== tiles.length) throw new RangeError(`${maps.length} maps for ${tiles.length} tiles`);
  const acc = new Float64Array(width * height);
  const sum = new Float64Array(width * height);
  maps.forEach((map, i) => {
    if (map.length !== tileW * tileH) throw new RangeError(`tile ${i}: ${map.length} values, expected ${tileW * tileH}`);
    const { left, top } = tiles[i];
    const rows = Math.min(tileH, height - top), cols = Math.min(tileW, width - left);
    for (let y = 0; y < rows; y++) {
      const src = y * tileW, dst = (top + y) * width + left;
      for (let x = 0; x < cols; x++) {
        acc[dst + x] += map[src + x] * weights[src + x];
        sum[dst + x] += weights[src + x];
      }
    }
  });
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = acc[i] / sum[i];
  return out;
}

/** One tile's pixels (tileW x tileH x 3, interleaved) copied out of an image's (width x 3 bytes a row). */
export function cropTile(rgb: Uint8Array, width: number, tile: Tile, tileW: number, tileH: number): Uint8Array {
  const out = new Uint8Array(tileW * tileH * 3);
  for (let y = 0; y < tileH; y++) {
    const from = ((tile.top + y) * width + tile.left) * 3;
    out.set(rgb.subarray(from, from + tileW * 3), y * tileW * 3);
  }
  return out;
}
