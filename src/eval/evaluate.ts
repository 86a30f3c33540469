import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { ModelEngine } from '../engine/model-engine.js';
import { scoreImage, type Scored } from '../detect/detect.js';
import { reduceScore } from '../maps/fuse.js';
import { gaussianBlur } from '../maps/gaussian.js';
import { scaledSize } from '../maps/tiles.js';
import type { Manifest } from '../bundle/manifest.js';
import { fitToInput, mapPlacement, type Placement } from '../image/preprocess.js';
import { cropMap } from '../maps/crop.js';
import { auroc, f1At, f1Max, PixelMetrics, rocCurve, thin, type RocPoint } from './metrics.js';
import type { TestSample } from './dataset.js';

export interface Scores {
  sample: TestSample;
  score: number;
  map: Float32Array;
  /** The map's width: the model's input width, or the image's at the inspection scale when tiled. */
  width: number;
  mask: Uint8Array | null;
  /** The input pixels that show the image (all but a letterbox's mirrored borders): pixel metrics count these. */
  window: Placement;
}

export interface GroupMetrics {
  images: number;
  imageAUROC: number;
  pixelAUROC: number;
  pixelAUPRO: number;
  imageF1: number;
  imageF1Max: number;
  /** Pixel F1 (defect pixels positive) at the bundle's pixel threshold, the one masks and regions use. */
  pixelF1: number;
  pixelF1Max: number;
}

export interface PathReport {
  path: string;
  teacherLayer: string;
  studentLayer: string;
  imageAUROC: number;
  pixelAUROC: number;
  pixelAUPRO: number;
}

/**
 * Each path's map on its own, through the fused map's upsampling, smoothing and reduction: what each
 * layer-wise and cross-layer path contributes (the ablation's per-path view). Raw 1 - cos lies in [0, 2],
 * which fixes the pixel bins before any image is seen.
 */
export class PathMetrics {
  private readonly scores: number[][];
  private readonly labels: boolean[] = [];
  private readonly px: PixelMetrics[];

  constructor(private readonly manifest: Manifest) {
    this.scores = manifest.student.outputs.map(() => []);
    this.px = manifest.student.outputs.map(() => new PixelMetrics(0, 2));
  }

  add(scored: Scored, mask: Uint8Array | null, defective: boolean, window: Placement): void {
    const { mapWidth: W, mapHeight: H } = scored;
    const { sigma, kernelSize, reduction } = this.manifest.fusion;
    this.labels.push(defective);
    this.manifest.student.outputs.forEach((o, k) => {
      const map = gaussianBlur(scored.pathMap(o.name).map, H, W, sigma, kernelSize);
      this.scores[k].push(reduceScore(map, reduction));
      this.px[k].add(cropMap(map, W, window), mask && cropMap(mask, W, window), window.width, window.height);
    });
  }

  report(): Record<string, PathReport> {
    return Object.fromEntries(this.manifest.student.outputs.map((o, k) => [o.name, {
      path: o.path,
      teacherLayer: o.imitates,
      studentLayer: o.layer,
      imageAUROC: auroc(this.scores[k], this.labels),
      pixelAUROC: this.px[k].pixelAuroc(),
      pixelAUPRO: this.px[k].aupro(0.3),
    }]));
  }
}

export interface Report extends GroupMetrics {
  model: { name: string; version: string };
  data: string;
  /** Where pixel metrics are computed: the model's input, or each image at the inspection scale (tiled bundles). */
  mapsAt: string;
  threshold: number;
  f1MaxThreshold: number;
  perDefect: Record<string, GroupMetrics>;
  perPath?: Record<string, PathReport>;
  secondsPerImage: number;
  curves: { imageRoc: RocPoint[]; pixelRoc: { fpr: number; tpr: number }[]; pro: { fpr: number; pro: number }[] };
}

/**
 * The mask at the map's resolution, 0/1, nearest neighbour: fitted to the model's input exactly like its width x
 * height image, or, when tiled, resized to the image's size at the inspection scale (its own size at scale 1).
 */
async function maskAtMap(file: string, engine: ModelEngine, width: number, height: number): Promise<Uint8Array> {
  const input = engine.manifest.input;
  const mask = sharp(await readFile(file)).greyscale();
  const fitted = input.fit === 'tile'
    ? mask.resize({ ...scaledSize(width, height, input.tile!.scale), fit: 'fill', kernel: 'nearest' })
    : fitToInput(mask, width, height, input, 'nearest');
  const raw = await fitted.raw().toBuffer();
  return Uint8Array.from(raw, (v) => (v > 127 ? 1 : 0));
}

/** Scores every sample through the server's own path, a few at a time so that batches form. */
export async function scoreAll(
  engine: ModelEngine,
  samples: TestSample[],
  onProgress?: (done: number) => void,
  concurrency = 16,
  paths?: PathMetrics,
): Promise<Scores[]> {
  const out: Scores[] = new Array(samples.length);
  let next = 0, done = 0;
  const worker = async () => {
    while (next < samples.length) {
      const i = next++;
      const s = samples[i];
      const scored = await scoreImage(engine, await readFile(s.file), i, { maxPixels: 400_000_000 });
      const window = scored.at.from;
      const mask = s.defect === 'good' ? null : s.mask ? await maskAtMap(s.mask, engine, scored.image.width, scored.image.height) : new Uint8Array(scored.map.length);
      out[i] = { sample: s, score: scored.score, map: Float32Array.from(scored.map), width: scored.mapWidth, mask, window };
      paths?.add(scored, mask, s.defect !== 'good', window);
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

function group(scores: Scores[], threshold: number, pixelThreshold: number, lo: number, hi: number): GroupMetrics & { px: PixelMetrics } {
  const s = scores.map((x) => x.score);
  const labels = scores.map((x) => x.sample.defect !== 'good');
  const px = new PixelMetrics(lo, hi);
  for (const { map, width, mask, window: w } of scores) px.add(cropMap(map, width, w), mask && cropMap(mask, width, w), w.width, w.height);
  return {
    images: scores.length,
    imageAUROC: auroc(s, labels),
    pixelAUROC: px.pixelAuroc(),
    pixelAUPRO: px.aupro(0.3),
    imageF1: f1At(s, labels, threshold),
    imageF1Max: f1Max(s, labels).f1,
    pixelF1: px.f1At(pixelThreshold),
    pixelF1Max: px.f1Max().f1,
    px,
  };
}

export function computeReport(engine: ModelEngine, data: string, scores: Scores[], seconds: number): Report {
  const m = engine.manifest;
  let lo = Infinity, hi = -Infinity;
  for (const x of scores) for (const v of x.map) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const threshold = m.calibration.image.threshold;
  const pixelThreshold = m.calibration.pixel.threshold;
  const { px, ...overall } = group(scores, threshold, pixelThreshold, lo, hi);
  const good = scores.filter((x) => x.sample.defect === 'good');
  const perDefect: Record<string, GroupMetrics> = {};
  for (const d of [...new Set(scores.map((x) => x.sample.defect))].filter((d) => d !== 'good')) {
    const { px: _px, ...g } = group([...good, ...scores.filter((x) => x.sample.defect === d)], threshold, pixelThreshold, lo, hi);
    perDefect[d] = g;
  }
  const s = scores.map((x) => x.score);
  const labels = scores.map((x) => x.sample.defect !== 'good');
  return {
    model: { name: m.name, version: m.version },
    data,
    mapsAt: m.input.fit === 'tile'
      ? `each image's own size${m.input.tile!.scale === 1 ? '' : ` at scale ${m.input.tile!.scale}`} (fit tile: ${m.input.width}x${m.input.height} tiles, overlap ${m.input.tile!.overlap}, ${m.input.tile!.blend} blend)`
      : `the model's ${m.input.width}x${m.input.height} input (fit ${m.input.fit})`,
    ...overall,
    threshold,
    f1MaxThreshold: f1Max(s, labels).threshold,
    perDefect,
    secondsPerImage: seconds / scores.length,
    curves: {
      imageRoc: rocCurve(s, labels).map((p) => ({ ...p, threshold: Number.isFinite(p.threshold) ? p.threshold : Number.MAX_VALUE })),
      pixelRoc: thin(px.rocCurve(), (p) => p.fpr),
      pro: thin(px.proCurve().filter((p) => p.fpr <= 0.3), (p) => p.fpr, 0.0005),
    },
  };
}
