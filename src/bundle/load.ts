import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, validateManifest, type Manifest } from './manifest.js';
import { decodeModel, graphIO, type GraphIO, type ModelProto, type TensorInfo } from './onnx-model.js';

/** A bundle that was read and cross-checked: manifest + both decoded ONNX models. */
export interface Bundle {
  dir: string;
  manifest: Manifest;
  teacher: ModelProto;
  student: ModelProto;
}

export class BundleError extends Error {
  constructor(readonly bundle: string, message: string) {
    super(`bundle ${bundle}: ${message}`);
    this.name = 'BundleError';
  }
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Folders of modelsDir that hold a manifest.json (other folders, e.g. the pipeline's code, are skipped). */
export async function listBundles(modelsDir: string): Promise<string[]> {
  const entries = await readdir(modelsDir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !NAME.test(e.name)) continue;
    const has = await stat(path.join(modelsDir, e.name, 'manifest.json')).then(() => true, () => false);
    if (has) out.push(e.name);
  }
  return out.sort();
}

async function readModel(dir: string, name: string, file: string): Promise<{ model: ModelProto; io: GraphIO }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path.join(dir, file));
  } catch {
    throw new BundleError(name, `${file} is missing`);
  }
  try {
    const model = decodeModel(bytes);
    const io = graphIO(model);
    if (io.outputs.length === 0) throw new Error('the graph has no outputs');
    return { model, io };
  } catch (err) {
    throw new BundleError(name, `${file} is not a readable ONNX model (${(err as Error).message})`);
  }
}

function checkInput(name: string, file: string, io: GraphIO, m: Manifest): void {
  if (io.inputs.length !== 1) throw new BundleError(name, `${file} has ${io.inputs.length} inputs, one is expected`);
  const inp = io.inputs[0];
  if (inp.name !== m.input.name) throw new BundleError(name, `${file} input is "${inp.name}", the manifest says "${m.input.name}"`);
  const [, c, h, w] = inp.dims;
  if (inp.dims.length !== 4 || (c !== null && c !== 3)) {
    throw new BundleError(name, `${file} input must be [N,3,H,W], it is [${inp.dims.map((d) => d ?? '?').join(',')}]`);
  }
  if ((h !== null && h !== m.input.height) || (w !== null && w !== m.input.width)) {
    throw new BundleError(name, `${file} input is ${w}x${h}, the manifest says ${m.input.width}x${m.input.height}`);
  }
}

function findOutput(name: string, file: string, io: GraphIO, output: string, channels: number): TensorInfo {
  const o = io.outputs.find((x) => x.name === output);
  if (!o) throw new BundleError(name, `${file} has no output "${output}" (it has ${io.outputs.map((x) => x.name).join(', ')})`);
  if (o.dims.length !== 4) throw new BundleError(name, `${file} output "${output}" is not a 4-D feature map`);
  if (o.dims[1] !== null && o.dims[1] !== channels) {
    throw new BundleError(name, `${file} output "${output}" has ${o.dims[1]} channels, the manifest says ${channels}`);
  }
  return o;
}

/** Reads and cross-checks a bundle folder; every failure names the problem. */
export async function loadBundle(dir: string): Promise<Bundle> {
  const name = path.basename(dir);
  let raw: string;
  try {
    raw = await readFile(path.join(dir, 'manifest.json'), 'utf8');
  } catch {
    throw new BundleError(name, 'manifest.json is missing');
  }
  let manifest: Manifest;
  try {
    manifest = validateManifest(JSON.parse(raw), name);
  } catch (err) {
    const msg = err instanceof ManifestError ? err.message : `manifest.json is not valid JSON (${(err as Error).message})`;
    throw new BundleError(name, msg);
  }
  const teacher = await readModel(dir, name, manifest.teacher.file);
  const student = await readModel(dir, name, manifest.student.file);
  checkInput(name, manifest.teacher.file, teacher.io, manifest);
  checkInput(name, manifest.student.file, student.io, manifest);
  for (const o of manifest.teacher.outputs) {
    const st = o.standardize;
    if (st && (st.mean.length !== o.channels || st.std.length !== o.channels)) {
      throw new BundleError(name, `teacher output "${o.name}": standardize lists ${st.mean.length} means and ${st.std.length} stds for ${o.channels} channels`);
    }
  }
  const tOut = new Map(manifest.teacher.outputs.map((o) => [o.name, findOutput(name, manifest.teacher.file, teacher.io, o.name, o.channels)]));
  for (const o of manifest.student.outputs) {
    const s = findOutput(name, manifest.student.file, student.io, o.name, o.channels);
    const t = tOut.get(o.imitates)!;
    const [sh, sw, th, tw] = [s.dims[2], s.dims[3], t.dims[2], t.dims[3]];
    if (sh !== null && th !== null && sw !== null && tw !== null && (sh !== th || sw !== tw)) {
      throw new BundleError(name, `student output "${o.name}" is ${sw}x${sh}, teacher output "${t.name}" is ${tw}x${th}`);
    }
  }
  return { dir, manifest, teacher: teacher.model, student: student.model };
}
