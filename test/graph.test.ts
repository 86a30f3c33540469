import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import t, { type Test } from 'tap';
import { loadBundle, type Bundle } from '../src/bundle/load.js';
import { composeBundle } from '../src/graph/compose.js';
import { OUTPUT_MAP, OUTPUT_SCORE, pathOutput } from '../src/graph/head.js';
import { cosineDistanceMap } from '../src/maps/cosine.js';
import { fuseMaps, reduceScore } from '../src/maps/fuse.js';
import { gaussianBlur } from '../src/maps/gaussian.js';
import { resizeBilinear } from '../src/maps/resize.js';
import { maxAbsDiff } from './helpers/close.js';
import { noise, TINY } from './helpers/fixtures.js';

const encode = (m: Bundle['teacher']) => onnxProto.onnx.ModelProto.encode(m).finish();

/** The TypeScript oracle: teacher and student run separately, then the math in plain TypeScript. */
async function oracle(bundle: Bundle, x: Float32Array, batch: number) {
  const m = bundle.manifest;
  const { width: W, height: H } = m.input;
  const feeds = { [m.input.name]: new ort.Tensor('float32', x, [batch, 3, H, W]) };
  const te = await (await ort.InferenceSession.create(encode(bundle.teacher))).run(feeds);
  const st = await (await ort.InferenceSession.create(encode(bundle.student))).run(feeds);
  const out = [];
  for (let b = 0; b < batch; b++) {
    const paths = new Map<string, { map: Float32Array; h: number; w: number }>();
    for (const o of m.student.outputs) {
      const tt = te[o.imitates], ss = st[o.name];
      const [, c, h, w] = tt.dims as number[];
      const per = c * h * w;
      const tb = (tt.data as Float32Array).subarray(b * per, (b + 1) * per);
      const sb = (ss.data as Float32Array).subarray(b * per, (b + 1) * per);
      paths.set(o.name, { map: cosineDistanceMap(tb, sb, c, h, w), h, w });
    }
    const fused = fuseMaps(
      m.fusion.paths.map((f) => {
        const p = paths.get(f.student)!;
        return { map: resizeBilinear(p.map, p.h, p.w, H, W), offset: f.offset, scale: f.scale, weight: f.weight };
      }),
    );
    const map = gaussianBlur(fused, H, W, m.fusion.sigma, m.fusion.kernelSize);
    out.push({ map, score: reduceScore(map, m.fusion.reduction), paths });
  }
  return out;
}

async function compare(t: Test, bundle: Bundle, label: string) {
  const m = bundle.manifest;
  const batch = 3;
  const x = noise(batch * 3 * m.input.height * m.input.width, 7, 2);
  const session = await ort.InferenceSession.create(composeBundle(bundle));
  const got = await session.run({ [m.input.name]: new ort.Tensor('float32', x, [batch, 3, m.input.height, m.input.width]) });
  const want = await oracle(bundle, x, batch);
  const plane = m.input.height * m.input.width;
  for (let b = 0; b < batch; b++) {
    const map = (got[OUTPUT_MAP].data as Float32Array).subarray(b * plane, (b + 1) * plane);
    t.ok(maxAbsDiff(map, want[b].map) < 1e-4, `${label} image ${b}: anomaly map within 1e-4 (max diff ${maxAbsDiff(map, want[b].map).toExponential(2)})`);
    const score = (got[OUTPUT_SCORE].data as Float32Array)[b];
    t.ok(Math.abs(score - want[b].score) < 1e-4, `${label} image ${b}: score ${score} vs oracle ${want[b].score}`);
    for (const [name, p] of want[b].paths) {
      const n = p.h * p.w;
      const pm = (got[pathOutput(name)].data as Float32Array).subarray(b * n, (b + 1) * n);
      t.ok(maxAbsDiff(pm, p.map) < 1e-4, `${label} image ${b}: path ${name}`);
    }
  }
}

t.test('composed graph equals the TypeScript oracle (max reduction, as exported)', async (t) => {
  await compare(t, await loadBundle(TINY), 'max');
});

t.test('composed graph equals the oracle with top-k mean, unequal weights and a path left out', async (t) => {
  const bundle = await loadBundle(TINY);
  const m = bundle.manifest;
  m.fusion.reduction = { kind: 'topk-mean', k: 10 };
  m.fusion.paths = m.fusion.paths.slice(1).map((f, i) => ({ ...f, weight: 0.5 + i }));
  await compare(t, bundle, 'topk');
});

t.test('composed graph without smoothing', async (t) => {
  const bundle = await loadBundle(TINY);
  bundle.manifest.fusion.sigma = 0;
  bundle.manifest.fusion.kernelSize = 1;
  await compare(t, bundle, 'sigma0');
});
