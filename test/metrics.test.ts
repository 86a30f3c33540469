import t from 'tap';
import { areaUpTo, auroc, f1At, f1Max, PixelMetrics, rocCurve } from '../src/eval/metrics.js';
import { connectedRegions, labelComponents } from '../src/detect/regions.js';
import { noise } from './helpers/fixtures.js';

/** Independent AUROC: all positive/negative pairs, ties count one half. */
function pairwiseAuroc(s: number[], y: boolean[]): number {
  let num = 0, den = 0;
  for (let i = 0; i < s.length; i++) if (y[i]) for (let j = 0; j < s.length; j++) if (!y[j]) {
    den++;
    num += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
  }
  return num / den;
}

t.test('AUROC: hand-computed cases, ties, agreement with the pairwise definition', async (t) => {
  t.equal(auroc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]), 1);
  t.equal(auroc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]), 0);
  t.equal(auroc([0.5, 0.5, 0.5, 0.5], [false, true, false, true]), 0.5, 'all tied');
  t.equal(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75, 'sklearn docs example');
  t.equal(auroc([1, 2, 2, 3], [false, false, true, true]), 0.875, 'one tie between classes');
  t.ok(Number.isNaN(auroc([1, 2], [true, true])), 'undefined without negatives');
  const s = Array.from(noise(300, 11)).map((v) => Math.round(v * 20) / 20); // many ties
  const y = Array.from(noise(300, 12)).map((v, i) => v + s[i] * 0.5 > 0.6);
  t.ok(Math.abs(auroc(s, y) - pairwiseAuroc(s, y)) < 1e-12);
});

t.test('ROC curve and F1', async (t) => {
  const roc = rocCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
  t.same(roc.map((p) => [p.fpr, p.tpr]), [[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 1], [1, 1]]);
  t.equal(f1At([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.35), 0.8); // tp 2, fp 1, fn 0
  t.same(f1Max([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), { f1: 0.8, threshold: 0.35 });
});

t.test('connected components: 8-connectivity, areas, bounding boxes', async (t) => {
  // 5x4 with two regions: a diagonal (one region under 8-connectivity) and a single pixel
  const on = Uint8Array.from([1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  t.equal(labelComponents(on, 5, 4).count, 2);
  const map = Float32Array.from(on, (v, i) => v * (i + 1));
  const regions = connectedRegions(map, 5, 4, 0.5);
  t.same(regions.map((r) => [r.area, r.x0, r.y0, r.x1, r.y1, r.peak]), [[3, 0, 0, 3, 3, 13], [1, 4, 0, 5, 1, 5]]);
});

/** Independent pixel AUROC and PRO: sweep every distinct threshold directly. */
function bruteForce(maps: Float32Array[], masks: (Uint8Array | null)[], w: number, h: number, limit: number) {
  const s: number[] = [], y: boolean[] = [];
  maps.forEach((m, k) => m.forEach((v, i) => { s.push(v); y.push(!!masks[k]?.[i]); }));
  const regions = masks.flatMap((mask) => {
    if (!mask) return [];
    const { labels, count } = labelComponents(mask, w, h);
    return Array.from({ length: count }, (_, r) => labels.reduce<number[]>((a, l, i) => (l === r + 1 ? [...a, i] : a), []));
  });
  const regionImage = masks.flatMap((mask, k) => (mask ? Array(labelComponents(mask, w, h).count).fill(k) : []));
  const thresholds = [...new Set(s)].sort((a, b) => b - a);
  const negatives = y.filter((v) => !v).length;
  const curve = [{ fpr: 0, pro: 0 }];
  for (const th of thresholds) {
    let fp = 0;
    maps.forEach((m, k) => m.forEach((v, i) => { if (v >= th && !masks[k]?.[i]) fp++; }));
    const pro = regions.reduce((a, r, ri) => a + r.filter((i) => maps[regionImage[ri]][i] >= th).length / r.length, 0) / regions.length;
    curve.push({ fpr: fp / negatives, pro });
  }
  return { pixelAuroc: pairwiseAuroc(s, y), aupro: areaUpTo(curve, limit) };
}

t.test('pixel AUROC and AUPRO agree with a brute-force sweep', async (t) => {
  const w = 12, h = 10;
  const maps: Float32Array[] = [], masks: (Uint8Array | null)[] = [];
  for (let k = 0; k < 6; k++) {
    const mask = k < 2 ? null : new Uint8Array(w * h);
    if (mask) for (let i = 0; i < w * h; i++) mask[i] = (i % w) > 2 * k - 2 && (i % w) < 2 * k + 1 && Math.floor(i / w) > k - 1 && Math.floor(i / w) < k + 3 ? 1 : 0;
    // Quantised values: bins then hold single values, so the binned and exact curves coincide.
    const m = Float32Array.from(noise(w * h, 100 + k), (v, i) => Math.round((v + (mask?.[i] ? 0.4 : 0)) * 50) / 50);
    maps.push(m);
    masks.push(mask);
  }
  const px = new PixelMetrics(0, 1.4, 70 * 4);
  maps.forEach((m, k) => px.add(m, masks[k], w, h));
  for (const limit of [0.3, 1]) {
    const want = bruteForce(maps, masks, w, h, limit);
    t.ok(Math.abs(px.aupro(limit) - want.aupro) < 1e-9, `AUPRO up to ${limit}: ${px.aupro(limit)} vs ${want.aupro}`);
    t.ok(Math.abs(px.pixelAuroc() - want.pixelAuroc) < 1e-9, `pixel AUROC ${px.pixelAuroc()} vs ${want.pixelAuroc}`);
  }
  // Pixel F1 by counting, values above the threshold flagged; thresholds between quantised values, so the
  // histogram's bin edges do not matter.
  const values = maps.flatMap((m) => [...m]);
  const truth = masks.flatMap((k) => (k ? [...k] : new Array(w * h).fill(0)));
  const f1 = (thr: number) => {
    let tp = 0, fp = 0, p = 0;
    values.forEach((v, i) => { p += truth[i]; if (v > thr) { if (truth[i]) tp++; else fp++; } });
    return (2 * tp) / (tp + fp + p);
  };
  let best = 0;
  for (let q = 0; q <= 70; q++) {
    const thr = q / 50 + 0.01;
    t.ok(Math.abs(px.f1At(thr) - f1(thr)) < 1e-12, `pixel F1 at ${thr}`);
    best = Math.max(best, f1(thr));
  }
  t.ok(Math.abs(px.f1Max().f1 - Math.max(best, f1(-1))) < 1e-12, `pixel F1-max ${px.f1Max().f1} vs ${best}`);
});

t.test('AUPRO of perfect and of inverted maps', async (t) => {
  const w = 8, h = 8;
  const mask = Uint8Array.from({ length: 64 }, (_, i) => (i % 8 < 3 && i < 24 ? 1 : 0));
  const perfect = new PixelMetrics(0, 1);
  perfect.add(Float32Array.from(mask, (v) => v * 0.9), mask, w, h);
  perfect.add(new Float32Array(64), null, w, h);
  t.ok(Math.abs(perfect.aupro(0.3) - 1) < 1e-12);
  t.equal(perfect.pixelAuroc(), 1);
  const inverted = new PixelMetrics(0, 1);
  inverted.add(Float32Array.from(mask, (v) => (1 - v) * 0.9), mask, w, h);
  t.equal(inverted.aupro(0.3), 0);
});
