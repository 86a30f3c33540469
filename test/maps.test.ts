import { readFileSync } from 'node:fs';
import t from 'tap';
import { cosineDistanceMap } from '../src/maps/cosine.js';
import { cropMap } from '../src/maps/crop.js';
import { fuseMaps, reduceScore } from '../src/maps/fuse.js';
import { gaussianBlur, gaussianKernel1d, kernelSizeFor, reflectIndex } from '../src/maps/gaussian.js';
import { resizeBilinear } from '../src/maps/resize.js';
import { maxAbsDiff } from './helpers/close.js';

// Values computed by the PyTorch reference (models/pipeline/tests/make_reference_math.py).
const ref = JSON.parse(readFileSync(new URL('./fixtures/reference-math.json', import.meta.url), 'utf8'));

t.test('cosine distance map matches torch, including a zero vector', async (t) => {
  const c = ref.cosine;
  const got = cosineDistanceMap(Float32Array.from(c.t), Float32Array.from(c.s), c.c, c.h, c.w);
  t.ok(maxAbsDiff(got, c.expected) < 1e-5, `max diff ${maxAbsDiff(got, c.expected)}`);
  t.equal(got[0], 1, 'zero student vector gives distance 1');
});

t.test('bilinear resize (half-pixel) matches torch for up-, down- and non-integer scaling', async (t) => {
  for (const r of ref.resize) {
    const got = resizeBilinear(Float32Array.from(r.src), r.h, r.w, r.H, r.W);
    t.ok(maxAbsDiff(got, r.expected) < 1e-5, `${r.h}x${r.w} -> ${r.H}x${r.W}: max diff ${maxAbsDiff(got, r.expected)}`);
  }
});

t.test('gaussian kernel and reflect-padded blur match torch', async (t) => {
  const b = ref.blur;
  t.ok(maxAbsDiff(gaussianKernel1d(1.3, 9), b.kernel) < 1e-6);
  const got = gaussianBlur(Float32Array.from(b.src), b.h, b.w, b.sigma, b.size);
  t.ok(maxAbsDiff(got, b.expected) < 1e-5, `max diff ${maxAbsDiff(got, b.expected)}`);
  t.equal(kernelSizeFor(4), 33, "anomalib's rule: sigma 4 -> 33");
  t.equal(kernelSizeFor(0), 1);
  t.same([-2, -1, 0, 4, 5, 6].map((i) => reflectIndex(i, 5)), [2, 1, 0, 4, 3, 2]);
});

t.test('fusion and reductions match torch', async (t) => {
  const f = ref.fuse;
  const fused = fuseMaps(f.maps.map((m: number[], i: number) => ({ map: Float32Array.from(m), offset: f.offsets[i], scale: f.scales[i], weight: f.weights[i] })));
  t.ok(maxAbsDiff(fused, f.expected) < 1e-6);
  t.ok(Math.abs(reduceScore(fused, { kind: 'max' }) - f.max) < 1e-6);
  t.ok(Math.abs(reduceScore(fused, { kind: 'topk-mean', k: 5 }) - f.top5) < 1e-6);
});

t.test('hand-computed cases', async (t) => {
  // identical vectors: distance 0; opposite: 2; orthogonal: 1
  const a = Float32Array.from([1, 0, 0, 2]); // c=2, h=1, w=2: location 0 = (1,0), location 1 = (0,2)
  t.same(Array.from(cosineDistanceMap(a, a, 2, 1, 2)), [0, 0]);
  t.same(Array.from(cosineDistanceMap(a, Float32Array.from([-1, 0, 0, -2]), 2, 1, 2)), [2, 2]);
  t.same(Array.from(cosineDistanceMap(a, Float32Array.from([0, 3, 1, 0]), 2, 1, 2)), [1, 1]);
  t.same(Array.from(resizeBilinear(Float32Array.from([1, 3]), 1, 2, 1, 4)), [1, 1.5, 2.5, 3], 'half-pixel centres, clamped edges');
  t.equal(reduceScore(Float32Array.from([1, 5, 3, 4]), { kind: 'topk-mean', k: 2 }), 4.5);
});

t.test('cropMap: a window of a row-major map', async (t) => {
  const map = Float32Array.from({ length: 12 }, (_, i) => i); // 4 wide, 3 high
  t.same(Array.from(cropMap(map, 4, { left: 1, top: 1, width: 2, height: 2 })), [5, 6, 9, 10]);
  t.equal(cropMap(map, 4, { left: 0, top: 0, width: 4, height: 3 }), map, 'the whole map is not copied');
  const mask = Uint8Array.from([0, 1, 1, 0]);
  t.type(cropMap(mask, 2, { left: 1, top: 0, width: 1, height: 2 }), Uint8Array);
});
