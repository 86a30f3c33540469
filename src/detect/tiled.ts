import type { Manifest } from '../bundle/manifest.js';
import type { ItemResult } from '../engine/batcher.js';
import type { ModelEngine } from '../engine/model-engine.js';
import { OUTPUT_MAP, pathOutput } from '../graph/head.js';
import { ApiError } from '../http/errors.js';
import type { DecodedImage } from '../image/decode.js';
import { resizeForTiles } from '../image/preprocess.js';
import { reduceScore } from '../maps/fuse.js';
import { gaussianBlur } from '../maps/gaussian.js';
import { resizeBilinear } from '../maps/resize.js';
import { blendTiles, cropTile, scaledSize, tileGrid, tileWeights, type Tile } from '../maps/tiles.js';

export interface TiledScore {
  /** The fused map blended over the tiles and smoothed, at the inspection scale (width x height). */
  map: Float32Array;
  width: number;
  height: number;
  score: number;
  tiles: number;
  /** The largest batch any tile ran in. */
  batchSize: number;
  preprocessMs: number;
  /** Until the first tile ran. */
  queueMs: number;
  /** From then until the last tile was done. */
  inferenceMs: number;
  /** Blending, blur and score. */
  blendMs: number;
  /** A path's raw map (1 - cos, upsampled to each tile, blended) at the map's size, and its largest raw value. */
  pathMap(student: string): { map: Float32Array; max: number };
}

/** The tiles an image of width x height becomes under this bundle's tiling, known before any pixel is decoded. */
function imageTiles(m: Manifest, width: number, height: number): Tile[] {
  const s = scaledSize(width, height, m.input.tile!.scale);
  return tileGrid(s.width, s.height, m.input.width, m.input.height, m.input.tile!.overlap);
}

export const tileCount = (m: Manifest, width: number, height: number): number => imageTiles(m, width, height).length;

/**
 * fit tile: the image at the inspection scale becomes tiles that join the batcher's queue as items of their own
 * (so they batch with each other and with other requests), their maps are blended, then smoothed and reduced
 * here, as the pipeline's reference does (models/pipeline/mixdistill/tiles.py).
 */
export async function scoreTiled(engine: ModelEngine, image: DecodedImage, index: number, maxTiles: number): Promise<TiledScore> {
  const m = engine.manifest;
  const { width: tw, height: th } = m.input;
  const { overlap, blend } = m.input.tile!;
  const tiles = imageTiles(m, image.width, image.height);
  if (tiles.length > maxTiles) {
    throw new ApiError(413, 'TOO_MANY_TILES', `image ${index}: ${image.width}x${image.height} makes ${tiles.length} tiles of ${tw}x${th} for this model, over the limit of ${maxTiles} (MAX_TILES)`);
  }
  const t0 = performance.now();
  const img = await resizeForTiles(image, m.input, index);
  const { width, height } = img.scaled;
  const pixels = tiles.map((t) => cropTile(img.rgb, img.width, t, tw, th));
  const preprocessMs = performance.now() - t0;

  const t1 = performance.now();
  const results: ItemResult[] = await Promise.all(pixels.map((p) => engine.infer(p)));
  const inferredMs = performance.now() - t1;
  const queueMs = Math.min(...results.map((r) => r.queueMs));
  const t2 = performance.now();
  const weights = tileWeights(tw, th, overlap, blend);
  const blended = blendTiles(results.map((r) => r.outputs[OUTPUT_MAP].data), tiles, tw, th, width, height, weights);
  const { sigma, kernelSize, reduction } = m.fusion;
  const map = gaussianBlur(blended, height, width, sigma, kernelSize);
  const score = reduceScore(map, reduction);
  return {
    map,
    width,
    height,
    score,
    tiles: tiles.length,
    batchSize: Math.max(...results.map((r) => r.batchSize)),
    preprocessMs,
    // Until the first tile ran, then until the last one was done: tiles overlap in batches and workers.
    queueMs,
    inferenceMs: inferredMs - queueMs,
    blendMs: performance.now() - t2,
    pathMap(student) {
      let max = -Infinity;
      const up = results.map((r) => {
        const { data, dims } = r.outputs[pathOutput(student)];
        for (let i = 0; i < data.length; i++) if (data[i] > max) max = data[i];
        const [h, w] = dims.slice(-2);
        return resizeBilinear(data, h, w, th, tw);
      });
      return { map: blendTiles(up, tiles, tw, th, width, height, weights), max };
    },
  };
}
