import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import t from 'tap';
import { loadBundle } from '../src/bundle/load.js';
import { DEFAULT_MODELS_DIR, noise, TINY } from './helpers/fixtures.js';
import { tfjsTaps } from './helpers/tfjs-teacher.js';

// The teacher in a bundle is a PyTorch port of an nsfwjs Keras network, exported to ONNX. Here it is
// checked against the original network run by tfjs: relative L2 error <= 1e-5 at every tap.
/** What a standardised teacher outputs: the original tap, (f - mean) / std per channel (NCHW, batch 1). */
function standardized(f: Float32Array, st?: { mean: number[]; std: number[] }): Float32Array {
  if (!st) return f;
  const plane = f.length / st.mean.length;
  return f.map((v, i) => (v - st.mean[Math.floor(i / plane)]) / st.std[Math.floor(i / plane)]);
}

const bundles = [TINY, path.join(DEFAULT_MODELS_DIR, 'mtd-mnv2'), path.join(DEFAULT_MODELS_DIR, 'mtd-mnv2-incv3')]
  .filter((d) => existsSync(path.join(d, 'manifest.json')));

/** The teachers in a bundle: one, or an ensemble's members (provenance.members), each with its taps. */
function teachersOf(dir: string): { spec: string; taps?: string[] }[] {
  const prov = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).provenance ?? {};
  const members: { teacher?: { spec?: string }; taps?: string[] }[] = prov.members ?? [{ teacher: prov.teacher }];
  return members.map((m) => ({ spec: String(m.teacher?.spec ?? ''), taps: m.taps }));
}

for (const dir of bundles) {
  for (const { spec, taps: memberTaps } of teachersOf(dir)) {
    const skip = spec.startsWith('nsfwjs:') ? false : `teacher ${spec} is not from nsfwjs`;
    t.test(`teacher ${spec} of ${path.basename(dir)} matches the original tfjs network`, { skip }, async (t) => {
      const { manifest: m, teacher } = await loadBundle(dir);
      const { width: W, height: H } = m.input;
      const pixels = noise(H * W * 3, 42, 255); // 0..255, HWC
      const x = pixels.map((v) => v * m.input.scaling.scale); // the nsfwjs teachers take x / 255, RGB
      const nchw = new Float32Array(3 * H * W);
      for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) nchw[c * H * W + i] = x[i * 3 + c];
      const session = await ort.InferenceSession.create(onnxProto.onnx.ModelProto.encode(teacher).finish());
      const got = await session.run({ [m.input.name]: new ort.Tensor('float32', nchw, [1, 3, H, W]) });
      const outputs = m.teacher.outputs.filter((o) => !memberTaps || memberTaps.includes(o.name));
      const want = await tfjsTaps(spec.slice('nsfwjs:'.length), outputs.map((o) => o.name), H, W, x);
      outputs.forEach((o, k) => {
        const a = got[o.name].data as Float32Array, b = standardized(want[k], o.standardize);
        let num = 0, den = 0;
        for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
        const rel = Math.sqrt(num / den);
        t.ok(a.length === b.length && rel <= 1e-5, `${o.name}: relative L2 ${rel.toExponential(2)}`);
      });
    });
  }
}
