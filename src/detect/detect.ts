import type { Manifest, PathKind } from '../bundle/manifest.js';
import type { ModelEngine } from '../engine/model-engine.js';
import { OUTPUT_MAP, OUTPUT_SCORE, pathOutput } from '../graph/head.js';
import { decodeImage, type DecodedImage, type DecodeLimits } from '../image/decode.js';
import type { ItemResult } from '../engine/batcher.js';
import { mapPlacement, outputSize, resizeForModel, scalePlacement, type MapPlacement } from '../image/preprocess.js';
import { cropMap } from '../maps/crop.js';
import { resizeBilinear } from '../maps/resize.js';
import { colorize } from './colormap.js';
import { greyPng, heatmapPng, mapPng, overlayPng } from './encode.js';
import { connectedRegions } from './regions.js';
import { effectiveThresholds, normalize, normalizeMap } from './scoring.js';
import { scoreTiled } from './tiled.js';

export const INCLUDES = ['heatmap', 'overlay', 'mask', 'map', 'regions', 'paths'] as const;
export type Include = (typeof INCLUDES)[number];

/** Limits on one image: its pixels (checked on the header) and, for tiled models, its tiles. */
export interface ImageLimits extends DecodeLimits {
  maxTiles?: number;
}

export interface DetectOptions {
  include: ReadonlySet<Include>;
  threshold?: number;
  sensitivity?: number;
  /** Longest side of the PNG outputs; the image's own size when it is shorter (outputSize). */
  maxSide?: number;
}

export interface Timings {
  decode: number;
  preprocess: number;
  queue: number;
  inference: number;
  postprocess: number;
  encode: number;
  total: number;
}

export interface Region {
  bbox: { x: number; y: number; width: number; height: number };
  areaPx: number;
  areaPercent: number;
  peakScore: number;
  peakNormalized: number;
}

export interface PathResult {
  name: string;
  kind: 'layer-wise' | 'cross-layer';
  path: PathKind;
  teacherLayer: string;
  studentLayer: string;
  max: number;
  map?: string;
}

export interface DetectionResult {
  index: number;
  width: number;
  height: number;
  score: number;
  normalizedScore: number;
  threshold: number;
  pixelThreshold: number;
  isAnomalous: boolean;
  batchSize: number;
  /** Model inputs the image became: 1, or its tile count for a tiled model. */
  tiles: number;
  timings: Timings;
  heatmap?: string;
  overlay?: string;
  mask?: string;
  map?: string;
  regions?: Region[];
  paths?: PathResult[];
  /** The heatmap PNG bytes, kept for Accept: image/png answers (never serialised). */
  heatmapPng?: Buffer;
}

const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;
const since = (t: number) => performance.now() - t;

function maxOf(a: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

export interface Scored {
  image: DecodedImage;
  /** The fused, smoothed anomaly map, mapWidth x mapHeight: the model's input size, or the inspection scale's when tiled. */
  map: Float32Array;
  mapWidth: number;
  mapHeight: number;
  /** Where the map lands on the image. */
  at: MapPlacement;
  score: number;
  tiles: number;
  batchSize: number;
  /** postprocess: what scoring already did after inference (a tiled image's blend, blur and score), else 0. */
  timings: Pick<Timings, 'decode' | 'preprocess' | 'queue' | 'inference' | 'postprocess'>;
  /** A path's raw map (1 - cos) at the map's resolution, bilinear (blended over tiles), and its largest raw value. */
  pathMap(student: string): { map: Float32Array; max: number };
}

/** decode -> preprocess -> infer: the part of the request path that the evaluation command shares. */
export async function scoreImage(engine: ModelEngine, bytes: Buffer, index: number, limits: ImageLimits): Promise<Scored> {
  const m = engine.manifest;
  const { width: W, height: H } = m.input;
  const t0 = performance.now();
  const image = await decodeImage(bytes, limits, index);
  const decode = since(t0);
  if (m.input.fit === 'tile') {
    const t = await scoreTiled(engine, image, index, limits.maxTiles ?? Infinity);
    const whole = { left: 0, top: 0, width: t.width, height: t.height };
    return {
      image,
      map: t.map,
      mapWidth: t.width,
      mapHeight: t.height,
      at: { from: whole, to: { left: 0, top: 0, width: image.width, height: image.height } },
      score: t.score,
      tiles: t.tiles,
      batchSize: t.batchSize,
      timings: { decode, preprocess: t.preprocessMs, queue: t.queueMs, inference: t.inferenceMs, postprocess: t.blendMs },
      pathMap: t.pathMap,
    };
  }
  const t1 = performance.now();
  // Scaling and the intensity remap run inside the composed graph (src/graph/preprocess.ts).
  const rgb = await resizeForModel(image, m.input, index);
  const preprocess = since(t1);
  const inferred = await engine.infer(rgb);
  const outputs: ItemResult['outputs'] = inferred.outputs;
  return {
    image,
    map: outputs[OUTPUT_MAP].data,
    mapWidth: W,
    mapHeight: H,
    at: mapPlacement(image.width, image.height, m.input),
    score: outputs[OUTPUT_SCORE].data[0],
    tiles: 1,
    batchSize: inferred.batchSize,
    timings: { decode, preprocess, queue: inferred.queueMs, inference: inferred.inferenceMs, postprocess: 0 },
    pathMap(student) {
      const { data, dims } = outputs[pathOutput(student)];
      const [h, w] = dims.slice(-2);
      return { map: resizeBilinear(data, h, w, H, W), max: maxOf(data) };
    },
  };
}

/** The request path for one image: decode -> preprocess -> infer (batched, in a worker) -> postprocess -> encode. */
export async function detectImage(
  engine: ModelEngine,
  bytes: Buffer,
  index: number,
  opts: DetectOptions & { wantPng?: boolean },
  limits: ImageLimits,
): Promise<DetectionResult> {
  const m: Manifest = engine.manifest;
  const t0 = performance.now();
  const scored = await scoreImage(engine, bytes, index, limits);
  const { image, map, score, batchSize, timings, at } = scored;
  const { mapWidth: W, mapHeight: H } = scored;

  const t2 = performance.now();
  const cal = m.calibration;
  const th = effectiveThresholds(cal.image, cal.pixel, opts);
  const result: DetectionResult = {
    index,
    width: image.width,
    height: image.height,
    score: round(score, 5),
    normalizedScore: round(normalize(score, cal.image), 4),
    threshold: round(th.image, 5),
    pixelThreshold: round(th.pixel, 5),
    isAnomalous: score >= th.image,
    batchSize,
    tiles: scored.tiles,
    timings: { decode: 0, preprocess: 0, queue: 0, inference: 0, postprocess: 0, encode: 0, total: 0 },
  };
  const inc = opts.include;
  const needHeat = inc.has('heatmap') || inc.has('overlay') || opts.wantPng;
  // Heatmap colours follow the threshold in force for this request; the grey map stays on the calibrated
  // scale (0.5 = calibrated pixel threshold) so that clients can apply any sensitivity themselves.
  const heatRgb = needHeat ? colorize(normalizeMap(map, { low: cal.pixel.low, threshold: th.pixel })) : undefined;
  let grey: Uint8Array | undefined;
  if (inc.has('map')) {
    const scaled = normalizeMap(map, cal.pixel);
    grey = new Uint8Array(scaled.length);
    for (let i = 0; i < scaled.length; i++) grey[i] = Math.round(scaled[i] * 255);
  }
  let mask: Uint8Array | undefined;
  if (inc.has('mask')) {
    mask = new Uint8Array(map.length);
    for (let i = 0; i < map.length; i++) mask[i] = map[i] >= th.pixel ? 255 : 0;
  }
  if (inc.has('regions')) {
    const { from, to } = at;
    const sx = to.width / from.width, sy = to.height / from.height;
    result.regions = connectedRegions(cropMap(map, W, from), from.width, from.height, th.pixel).map((r) => {
      const x = Math.floor(to.left + r.x0 * sx), y = Math.floor(to.top + r.y0 * sy);
      const areaPx = r.area * sx * sy;
      return {
        bbox: { x, y, width: Math.max(1, Math.ceil(to.left + r.x1 * sx) - x), height: Math.max(1, Math.ceil(to.top + r.y1 * sy) - y) },
        areaPx: Math.round(areaPx),
        areaPercent: round((100 * areaPx) / (image.width * image.height), 3),
        peakScore: round(r.peak, 5),
        peakNormalized: round(normalize(r.peak, { low: cal.pixel.low, threshold: th.pixel }), 4),
      };
    });
  }
  const pathMaps: { o: (typeof m.student.outputs)[number]; rgb: Uint8Array; max: number }[] = [];
  if (inc.has('paths')) {
    const fusion = new Map(m.fusion.paths.map((f) => [f.student, f]));
    for (const o of m.student.outputs) {
      const { map: up, max } = scored.pathMap(o.name);
      const f = fusion.get(o.name);
      // Display scale: 1 is the path's normal 99.9th percentile; twice that saturates.
      const offset = f?.offset ?? 0, scale = f?.scale ?? Math.max(max, 1e-6);
      for (let i = 0; i < up.length; i++) up[i] = (up[i] - offset) / scale / 2;
      pathMaps.push({ o, rgb: colorize(up), max });
    }
  }
  const postprocessMs = since(t2);

  const t3 = performance.now();
  const size = outputSize(image.width, image.height, opts.maxSide);
  const atOut = scalePlacement(at, image, size);
  const [heatmap, overlay, maskOut, greyOut, pathPngs] = await Promise.all([
    inc.has('heatmap') || opts.wantPng ? heatmapPng(heatRgb!, W, H, size.width, size.height, atOut) : undefined,
    inc.has('overlay') ? overlayPng(image, heatRgb!, W, H, atOut, size) : undefined,
    mask ? greyPng(mask, W, H, size.width, size.height, atOut, 'nearest') : undefined,
    grey ? greyPng(grey, W, H, size.width, size.height, atOut, 'linear') : undefined,
    Promise.all(pathMaps.map((p) => mapPng(p.rgb, W, H))),
  ]);
  if (heatmap) {
    if (inc.has('heatmap')) result.heatmap = heatmap.toString('base64');
    if (opts.wantPng) result.heatmapPng = heatmap;
  }
  if (overlay) result.overlay = overlay.toString('base64');
  if (maskOut) result.mask = maskOut.toString('base64');
  if (greyOut) result.map = greyOut.toString('base64');
  if (inc.has('paths')) {
    result.paths = pathMaps.map((p, i) => ({
      name: p.o.name,
      kind: p.o.path === 'direct' ? 'layer-wise' : 'cross-layer',
      path: p.o.path,
      teacherLayer: p.o.imitates,
      studentLayer: p.o.layer,
      max: round(p.max, 5),
      map: pathPngs[i].toString('base64'),
    }));
  }
  const encodeMs = since(t3);
  result.timings = {
    decode: round(timings.decode),
    preprocess: round(timings.preprocess),
    queue: round(timings.queue),
    inference: round(timings.inference),
    postprocess: round(timings.postprocess + postprocessMs),
    encode: round(encodeMs),
    total: round(since(t0)),
  };
  return result;
}
