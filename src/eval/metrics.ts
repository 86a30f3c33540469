import { labelComponents } from '../detect/regions.js';

/**
 * Exact AUROC: the probability that a random positive scores above a random negative, ties counting
 * one half (the Mann-Whitney statistic; equals the trapezoidal area under the ROC curve).
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0, neg = 0, rankSum = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const midRank = (i + j) / 2 + 1; // ranks are 1-based; ties share their mean rank
    for (let k = i; k <= j; k++) if (labels[idx[k]]) { rankSum += midRank; pos++; } else neg++;
    i = j + 1;
  }
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export interface RocPoint {
  threshold: number;
  fpr: number;
  tpr: number;
}

/** ROC points at every distinct score, from the highest threshold down. */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): RocPoint[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const P = idx.filter((i) => labels[i]).length, N = idx.length - P;
  const out: RocPoint[] = [{ threshold: Infinity, fpr: 0, tpr: 0 }];
  let tp = 0, fp = 0;
  for (let i = 0; i < idx.length; i++) {
    if (labels[idx[i]]) tp++; else fp++;
    if (i + 1 === idx.length || scores[idx[i + 1]] !== scores[idx[i]]) out.push({ threshold: scores[idx[i]], fpr: N ? fp / N : 0, tpr: P ? tp / P : 0 });
  }
  return out;
}

/** Best F1 over thresholds, and F1 at a given threshold (score >= threshold is positive). */
export function f1At(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, threshold: number): number {
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = scores[i] >= threshold;
    if (p && labels[i]) tp++;
    else if (p) fp++;
    else if (labels[i]) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

export function f1Max(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): { f1: number; threshold: number } {
  let best = { f1: 0, threshold: Infinity };
  for (const t of new Set(Array.from(scores))) {
    const f = f1At(scores, labels, t);
    if (f > best.f1) best = { f1: f, threshold: t };
  }
  return best;
}

/**
 * Pixel-level accumulators over many images, binned on a fixed score range: pixel AUROC and the
 * per-region-overlap (PRO) curve of the MVTec AD protocol. A pixel of a ground-truth region adds
 * 1 / (area * regions) to PRO; a normal pixel adds 1 / normalPixels to the FPR. With 2^16 bins the
 * binning error is far below the figures' last reported digit.
 */
export class PixelMetrics {
  private readonly pos: Float64Array;
  private readonly neg: Float64Array;
  private readonly proWeight: Float64Array;
  private regionCount = 0;
  private normalPixels = 0;

  constructor(private readonly lo: number, private readonly hi: number, private readonly bins = 1 << 16) {
    this.pos = new Float64Array(bins);
    this.neg = new Float64Array(bins);
    this.proWeight = new Float64Array(bins);
  }

  private bin(v: number): number {
    const b = Math.floor(((v - this.lo) / (this.hi - this.lo)) * this.bins);
    return b < 0 ? 0 : b >= this.bins ? this.bins - 1 : b;
  }

  /** One image: its anomaly map and binary mask (same size; mask null for a normal image). */
  add(map: Float32Array, mask: Uint8Array | null, w: number, h: number): void {
    const bins = new Int32Array(map.length);
    for (let i = 0; i < map.length; i++) bins[i] = this.bin(map[i]);
    if (!mask) {
      for (let i = 0; i < map.length; i++) this.neg[bins[i]]++;
      this.normalPixels += map.length;
      return;
    }
    const { labels, count } = labelComponents(mask, w, h);
    const area = new Float64Array(count + 1);
    for (let i = 0; i < labels.length; i++) area[labels[i]]++;
    for (let i = 0; i < map.length; i++) {
      if (mask[i]) this.pos[bins[i]]++;
      else {
        this.neg[bins[i]]++;
        this.normalPixels++;
      }
    }
    for (let i = 0; i < labels.length; i++) if (labels[i]) this.proWeight[bins[i]] += 1 / area[labels[i]];
    this.regionCount += count;
  }

  pixelAuroc(): number {
    let P = 0, N = 0;
    for (let b = 0; b < this.bins; b++) { P += this.pos[b]; N += this.neg[b]; }
    let auc = 0, negBelow = 0;
    for (let b = 0; b < this.bins; b++) {
      auc += this.pos[b] * (negBelow + this.neg[b] / 2);
      negBelow += this.neg[b];
    }
    return P && N ? auc / (P * N) : NaN;
  }

  /** Pixel ROC points (fpr, tpr), thresholds from high to low, one per non-empty bin. */
  rocCurve(): { fpr: number; tpr: number }[] {
    let P = 0, N = 0;
    for (let b = 0; b < this.bins; b++) { P += this.pos[b]; N += this.neg[b]; }
    const out = [{ fpr: 0, tpr: 0 }];
    let tp = 0, fp = 0;
    for (let b = this.bins - 1; b >= 0; b--) {
      if (!this.pos[b] && !this.neg[b]) continue;
      tp += this.pos[b];
      fp += this.neg[b];
      out.push({ fpr: N ? fp / N : 0, tpr: P ? tp / P : 0 });
    }
    return out;
  }

  /**
   * Pixel F1 (defect pixels positive) with values above `threshold` flagged, to the histogram's resolution:
   * the bin that holds the threshold counts as not flagged.
   */
  f1At(threshold: number): number {
    const first = this.bin(threshold) + 1;
    let tp = 0, fp = 0, P = 0;
    for (let b = 0; b < this.bins; b++) {
      P += this.pos[b];
      if (b >= first) { tp += this.pos[b]; fp += this.neg[b]; }
    }
    return P ? (2 * tp) / (tp + fp + P) : NaN;
  }

  /** The best pixel F1 over the histogram's bin edges, and the lower edge of the first flagged bin. */
  f1Max(): { f1: number; threshold: number } {
    let P = 0;
    for (let b = 0; b < this.bins; b++) P += this.pos[b];
    if (!P) return { f1: NaN, threshold: NaN };
    let tp = 0, fp = 0, best = 0, at = this.hi;
    for (let b = this.bins - 1; b >= 0; b--) {
      tp += this.pos[b];
      fp += this.neg[b];
      const f1 = (2 * tp) / (tp + fp + P);
      if (f1 > best) { best = f1; at = this.lo + ((this.hi - this.lo) * b) / this.bins; }
    }
    return { f1: best, threshold: at };
  }

  /** The PRO curve (fpr, pro), thresholds from high to low. */
  proCurve(): { fpr: number; pro: number }[] {
    const totalRegions = this.regionCount;
    if (totalRegions === 0) return [];
    const curve = [{ fpr: 0, pro: 0 }];
    let fp = 0, pro = 0;
    for (let b = this.bins - 1; b >= 0; b--) {
      if (!this.neg[b] && !this.proWeight[b]) continue;
      fp += this.neg[b];
      pro += this.proWeight[b];
      curve.push({ fpr: fp / this.normalPixels, pro: pro / totalRegions });
    }
    return curve;
  }

  /** Area under the PRO curve up to `limit` FPR, divided by `limit` (1 is perfect). */
  aupro(limit = 0.3): number {
    return areaUpTo(this.proCurve(), limit);
  }
}

/** Trapezoidal area under (x, y) points sorted by x, up to x = limit (interpolated), over limit. */
export function areaUpTo(curve: { fpr: number; pro: number }[], limit: number): number {
  if (curve.length < 2) return NaN;
  let area = 0;
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1], b = curve[i];
    if (a.fpr >= limit) break;
    if (b.fpr <= limit) area += ((b.fpr - a.fpr) * (a.pro + b.pro)) / 2;
    else {
      const y = a.pro + ((b.pro - a.pro) * (limit - a.fpr)) / (b.fpr - a.fpr);
      area += ((limit - a.fpr) * (a.pro + y)) / 2;
    }
  }
  return area / limit;
}

/** Keeps the first and last points and at most one point per `step` of x (curves for plots and reports). */
export function thin<T>(curve: T[], x: (p: T) => number, step = 0.002): T[] {
  const out: T[] = [];
  let last = -Infinity;
  curve.forEach((p, i) => {
    if (i === 0 || i === curve.length - 1 || x(p) - last >= step) {
      out.push(p);
      last = x(p);
    }
  });
  return out;
}
