import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import t from 'tap';
import { loadBundle } from '../src/bundle/load.js';
import { fromRoot } from '../src/paths.js';
import { DEFAULT_MODELS_DIR, noise, TINY } from './helpers/fixtures.js';
import { tfjsTaps } from './helpers/tfjs-teacher.js';

// The teacher in a bundle is a PyTorch port, exported to ONNX. An nsfwjs teacher is checked against the
// original Keras network run by tfjs; a torchvision teacher (ImageNet weights in ../shared, read as folded
// .npy files or ported from int8 TorchScript) against its PyTorch port, whose own parity with the originals
// the pipeline's tests check (models/pipeline/tests/test_teacher.py). Relative L2 error <= 1e-5 at every tap.
/** What a standardised teacher outputs: the original tap, (f - mean) / std per channel (NCHW, batch 1). */
function standardized(f: Float32Array, st?: { mean: number[]; std: number[] }): Float32Array {
  if (!st) return f;
  const plane = f.length / st.mean.length;
  return f.map((v, i) => (v - st.mean[Math.floor(i / plane)]) / st.std[Math.floor(i / plane)]);
}

/** Relative L2 distance; Infinity when the lengths differ. */
function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return a.length === b.length ? Math.sqrt(num / den) : Infinity;
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
    const skip = spec.startsWith('nsfwjs:') ? false : `teacher ${spec} is not from nsfwjs (checked below)`;
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
        const rel = relL2(got[o.name].data as Float32Array, standardized(want[k], o.standardize));
        t.ok(rel <= 1e-5, `${o.name}: relative L2 ${rel.toExponential(2)}`);
      });
    });
  }
}

/** The same noise image as above, scaled for ImageNet weights, NCHW. */
function imagenetInput(H: number, W: number, scaling: { scale: number; mean: number[]; std: number[] }): Float32Array {
  const pixels = noise(H * W * 3, 42, 255);
  const nchw = new Float32Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) nchw[c * H * W + i] = (pixels[i * 3 + c] * scaling.scale - scaling.mean[c]) / scaling.std[c];
  return nchw;
}

const IMAGENET = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const havePython = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' }).status === 0;

/** The PyTorch port's taps of x (and, with onnx, the teacher exported as `export` does), by the pipeline. */
async function portTaps(dir: string, spec: string, taps: string[] | undefined, H: number, W: number, x: Float32Array, onnx?: string): Promise<Record<string, Float32Array>> {
  const input = path.join(dir, 'x.f32');
  await writeFile(input, Buffer.from(x.buffer));
  const args = ['-m', 'mixdistill', 'teacher-taps', '--teacher', spec, '--height', String(H), '--width', String(W), '--input', input, '--out', dir,
    ...(taps ? ['--taps', taps.join(',')] : []), ...(onnx ? ['--onnx', onnx] : [])];
  const r = spawnSync('/usr/bin/python3', args, { cwd: fromRoot(), env: { ...process.env, PYTHONPATH: fromRoot('models', 'pipeline') }, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`teacher-taps failed: ${r.stderr}`);
  const names = r.stdout.trim().split('\n').pop()!.split(',');
  const out: Record<string, Float32Array> = {};
  for (const n of names) {
    const b = await readFile(path.join(dir, `${n}.f32`));
    out[n] = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  return out;
}

const SHARED_WEIGHTS = fromRoot('..', 'shared', 'weights');
const torchvisionTeachers = [
  `torchvision:mobilenet_v2@${path.join(SHARED_WEIGHTS, 'torchvision-mobilenet_v2-quantized', 'mobilenet_quantized.pt')}`,
  `torchvision:resnet18@${path.join(SHARED_WEIGHTS, 'resnet18-imagenet-npy')}`,
];
for (const spec of torchvisionTeachers) {
  const weights = spec.slice(spec.indexOf('@') + 1);
  const skip = !havePython ? 'SKIPPED: Debian\'s python3-torch, python3-torchvision and python3-onnx are not installed'
    : !existsSync(weights) ? `SKIPPED: ${weights} is not here (../shared)` : false;
  t.test(`${spec.slice(0, spec.indexOf('@'))}: teacher.onnx as export writes it computes the PyTorch port's taps`, { skip }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-teacher-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const H = 96, W = 128; // not square, so that a transposed axis would show
    const x = imagenetInput(H, W, IMAGENET);
    const onnx = path.join(dir, 'teacher.onnx');
    const want = await portTaps(dir, spec, undefined, H, W, x, onnx);
    const session = await ort.InferenceSession.create(onnx);
    const got = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, H, W]) });
    t.same(session.outputNames, Object.keys(want));
    for (const [name, b] of Object.entries(want)) {
      const rel = relL2(got[name].data as Float32Array, b);
      t.ok(rel <= 1e-5, `${name}: relative L2 ${rel.toExponential(2)}`);
    }
  });
}

/** A bundle's torchvision members: the teacher spec each was trained with (weights path relative to the repo root). */
function torchvisionMembersOf(dir: string): { spec: string; taps?: string[] }[] {
  const prov = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).provenance ?? {};
  const members: { taps?: string[]; training?: { config?: { teacher?: string } } }[] = prov.members ?? [{ training: prov.training }];
  return members.map((m) => ({ spec: String(m.training?.config?.teacher ?? ''), taps: m.taps })).filter((m) => m.spec.startsWith('torchvision:'));
}

for (const dir of bundles) {
  for (const { spec, taps: memberTaps } of torchvisionMembersOf(dir)) {
    const weights = path.resolve(fromRoot(), spec.slice(spec.indexOf('@') + 1));
    const skip = !havePython ? 'SKIPPED: Debian\'s python3-torch, python3-torchvision and python3-onnx are not installed'
      : !existsSync(weights) ? `SKIPPED: ${weights} is not here (../shared)` : false;
    t.test(`teacher ${spec} of ${path.basename(dir)} matches its PyTorch port`, { skip }, async (t) => {
      const { manifest: m, teacher } = await loadBundle(dir);
      const { width: W, height: H } = m.input;
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-teacher-'));
      t.teardown(() => rm(tmp, { recursive: true, force: true }));
      const x = imagenetInput(H, W, m.input.scaling);
      const outputs = m.teacher.outputs.filter((o) => !memberTaps || memberTaps.includes(o.name));
      const want = await portTaps(tmp, `${spec.slice(0, spec.indexOf('@'))}@${weights}`, outputs.map((o) => o.name), H, W, x);
      const session = await ort.InferenceSession.create(onnxProto.onnx.ModelProto.encode(teacher).finish());
      const got = await session.run({ [m.input.name]: new ort.Tensor('float32', x, [1, 3, H, W]) });
      for (const o of outputs) {
        const rel = relL2(got[o.name].data as Float32Array, standardized(want[o.name], o.standardize));
        t.ok(rel <= 1e-5, `${o.name}: relative L2 ${rel.toExponential(2)}`);
      }
    });
  }
}
