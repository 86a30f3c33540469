import type { Manifest } from '../bundle/manifest.js';
import { COSINE_EPS } from '../maps/cosine.js';
import { gaussianKernel1d } from '../maps/gaussian.js';
import type { GraphBuilder } from './builder.js';

export const OUTPUT_MAP = 'anomaly_map';
export const OUTPUT_SCORE = 'score';
export const pathOutput = (student: string) => `path:${student}`;

export interface HeadTensors {
  /** Composed-graph tensor name of each teacher output, by teacher output name. */
  teacher: (name: string) => string;
  /** Composed-graph tensor name of each student output, by student output name. */
  student: (name: string) => string;
}

/**
 * The discrepancy head, as ONNX nodes (mirrors models/pipeline/mixdistill/anomaly_map.py and src/maps):
 * per path 1 - cos over channels -> bilinear (half-pixel) to the input size -> (d - offset) * weight / scale,
 * summed -> separable Gaussian with reflect padding (not for tiles) -> score by max or top-k mean.
 * Outputs: anomaly_map [N,1,H,W], score [N], and each path's raw map path:<student> [N,1,h,w].
 */
export function buildHead(g: GraphBuilder, m: Manifest, t: HeadTensors): string[] {
  const { width: W, height: H } = m.input;
  const eps2 = g.scalar(COSINE_EPS * COSINE_EPS, 'eps2');
  const one = g.scalar(1, 'one');
  const hw = g.ints([H, W], 'hw');
  const students = new Map(m.student.outputs.map((o) => [o.name, o]));
  const pathOutputs: string[] = [];
  const maps = new Map<string, string>();

  for (const o of m.student.outputs) {
    const te = t.teacher(o.imitates);
    const st = t.student(o.name);
    const dot = g.reduce('ReduceSum', g.op('Mul', [te, st]), [1], 1);
    const tt = g.reduce('ReduceSum', g.op('Mul', [te, te]), [1], 1);
    const ss = g.reduce('ReduceSum', g.op('Mul', [st, st]), [1], 1);
    const den = g.op('Sqrt', [g.op('Max', [g.op('Mul', [tt, ss]), eps2])]);
    const d = g.op('Sub', [one, g.op('Div', [dot, den])], {}, pathOutput(o.name));
    maps.set(o.name, d);
    pathOutputs.push(d);
  }

  const terms: string[] = [];
  for (const f of m.fusion.paths) {
    if (f.weight === 0) continue;
    const d = maps.get(f.student)!;
    if (!students.has(f.student)) throw new Error(`fusion path ${f.student} is not a student output`);
    const nc = g.op('Slice', [g.op('Shape', [d]), g.ints([0]), g.ints([2])]);
    const sizes = g.op('Concat', [nc, hw], { axis: 0 });
    const up = g.op('Resize', [d, '', '', sizes], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
    terms.push(g.op('Mul', [g.op('Sub', [up, g.scalar(f.offset, 'offset')]), g.scalar(f.weight / f.scale, 'gain')]));
  }
  if (terms.length === 0) throw new Error('every fusion weight is 0');
  let fused = terms.length === 1 ? terms[0] : g.op('Sum', terms);

  const { sigma, kernelSize: k } = m.fusion;
  // A tile's map is blended with its neighbours' before it is smoothed (src/detect/tiled.ts): smoothing each tile
  // alone would mirror its borders into the blend and leave seams. Its score output is then unused.
  if (sigma > 0 && k > 1 && m.input.fit !== 'tile') {
    const kernel = gaussianKernel1d(sigma, k);
    const r = (k - 1) / 2;
    const padW = g.op('Pad', [fused, g.ints([0, 0, 0, r, 0, 0, 0, r])], { mode: 'reflect' });
    const convW = g.op('Conv', [padW, g.floats(kernel, [1, 1, 1, k], 'gauss_w')]);
    const padH = g.op('Pad', [convW, g.ints([0, 0, r, 0, 0, 0, r, 0])], { mode: 'reflect' });
    fused = g.op('Conv', [padH, g.floats(kernel, [1, 1, k, 1], 'gauss_h')]);
  }
  const map = g.op('Identity', [fused], {}, OUTPUT_MAP);

  const red = m.fusion.reduction;
  if (red.kind === 'max') {
    g.reduce('ReduceMax', map, [1, 2, 3], 0, OUTPUT_SCORE);
  } else {
    const flat = g.op('Flatten', [map], { axis: 1 });
    const [top] = g.opMulti('TopK', [flat, g.ints([red.k], 'k')], 2, { axis: 1, largest: 1, sorted: 0 });
    g.reduce('ReduceMean', top, [1], 0, OUTPUT_SCORE);
  }
  return [OUTPUT_MAP, OUTPUT_SCORE, ...pathOutputs];
}
