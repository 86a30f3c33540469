/**
 * A bundle for measuring the host path alone: the input, smoothing, reduction and calibration of a real bundle,
 * but a teacher and a student that are one average pooling each. Its session costs next to nothing, so the
 * server's CPU time per image against it is what the service spends outside session.run (multipart, decode,
 * resize, tensor, batching, maps, PNG, JSON) for images of that real bundle's geometry.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { Manifest } from '../bundle/manifest.js';
import { GraphBuilder, tensorInfo } from '../graph/builder.js';

const { onnx } = onnxProto;
const OPSET = 17;
const STRIDE = 8;
const TAP = 'pool8';

function pooling(inputName: string, width: number, height: number, student: boolean): Uint8Array {
  const g = new GraphBuilder('', OPSET);
  let x = g.op('AveragePool', [inputName], { kernel_shape: [STRIDE, STRIDE], strides: [STRIDE, STRIDE] }, student ? undefined : TAP);
  // The student differs from the teacher per channel, so that the cosine maps are not identically zero.
  if (student) x = g.op('Mul', [x, g.floats([1, 1.25, 0.8], [1, 3, 1, 1], 'tint')], {}, `direct.${TAP}`);
  const model = {
    irVersion: 8,
    producerName: 'mixdistill-bench',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: student ? 'probe-student' : 'probe-teacher',
      input: [tensorInfo(inputName, ['batch', 3, height, width])],
      output: [tensorInfo(student ? `direct.${TAP}` : TAP, ['batch', 3, height / STRIDE, width / STRIDE])],
      node: g.nodes,
      initializer: g.initializers,
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** Writes the probe bundle `name` into `modelsDir` with `like`'s input geometry and post-processing; returns its folder. */
export async function writeHostProbeBundle(like: Manifest, modelsDir: string, name = 'host-probe'): Promise<string> {
  const { width, height } = like.input;
  if (width % STRIDE || height % STRIDE) throw new Error(`the probe needs an input divisible by ${STRIDE}, ${like.name} has ${width}x${height}`);
  const dir = path.join(modelsDir, name);
  await mkdir(dir, { recursive: true });
  const manifest: Manifest = {
    schemaVersion: 1,
    name,
    version: '1.0.0',
    description: `host-path probe with ${like.name} ${like.version}'s input: one average pooling as teacher and student, not a model`,
    input: like.input,
    teacher: { file: 'teacher.onnx', architecture: 'average pooling', outputs: [{ name: TAP, stride: STRIDE, channels: 3 }] },
    student: {
      file: 'student.onnx',
      architecture: 'average pooling, tinted',
      outputs: [{ name: `direct.${TAP}`, imitates: TAP, path: 'direct', layer: 'pool', stride: STRIDE, channels: 3 }],
    },
    fusion: { ...like.fusion, paths: [{ student: `direct.${TAP}`, weight: 1, offset: 0, scale: 1 }] },
    calibration: like.calibration,
    provenance: { createdAt: new Date().toISOString(), probeOf: { name: like.name, version: like.version } },
  };
  await writeFile(path.join(dir, 'teacher.onnx'), pooling(like.input.name, width, height, false));
  await writeFile(path.join(dir, 'student.onnx'), pooling(like.input.name, width, height, true));
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return dir;
}
