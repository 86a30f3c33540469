import type { InputSpec } from '../image/preprocess.js';
import type { GraphBuilder } from './builder.js';

/** The composed graph's input: the resized image's 8-bit pixels as sharp gives them, [N, H, W, 3] RGB. */
export const PIXELS_INPUT = 'pixels';

/**
 * The model's float input from 8-bit pixels, as ONNX nodes (mirrors toTensor in src/image/preprocess.ts):
 * optional per-image intensity remap (all channels together: p' = p * gain + bias, gain = target std / std, 1 for
 * a flat image), channel order, x[c] = (p' * scale - mean[c]) / std[c], HWC -> CHW. In the graph rather than on
 * the main thread, a quarter of the bytes cross to the worker (and, on GPU nodes, to the device), and the per-pixel
 * work runs where the session's threads are.
 *
 * Every full-size pass costs CPU on a CPU node, so the layout change is done on the bytes (a quarter of the
 * memory), and remap and scaling are folded into one multiply-add per pixel with per-image, per-channel
 * coefficients computed on [N,1,1,1] and [1,3,1,1] tensors.
 */
export function buildPreprocess(g: GraphBuilder, input: InputSpec, pixels: string, output: string): string {
  let bytes = g.op('Transpose', [pixels], { perm: [0, 3, 1, 2] });
  if (input.channelOrder === 'BGR') bytes = g.op('Gather', [bytes, g.ints([2, 1, 0], 'bgr')], { axis: 1 });
  const x = g.op('Cast', [bytes], { to: 1 /* FLOAT */ });
  const { scale, mean, std } = input.scaling;
  const scaleC = g.floats([0, 1, 2].map((c) => scale / std[c]), [1, 3, 1, 1], 'scale');
  const shiftC = g.floats([0, 1, 2].map((c) => -mean[c] / std[c]), [1, 3, 1, 1], 'shift');
  const ni = input.normalizeIntensity;
  if (!ni) return g.op('Add', [g.op('Mul', [x, scaleC]), shiftC], {}, output);

  const n = 3 * input.width * input.height;
  const mu = g.reduce('ReduceMean', x, [1, 2, 3], 1);
  // Two passes (the mean, then the centred squares): E[x^2] - E[x]^2 loses digits in float32 on near-flat images.
  const sumSq = g.reduce('ReduceSumSquare', g.op('Sub', [x, mu]), [1, 2, 3], 1);
  const sd = g.op('Sqrt', [g.op('Div', [sumSq, g.scalar(n, 'count')])]);
  const gain = g.op('Where', [g.op('Greater', [sd, g.scalar(1e-3, 'flat_std')]), g.op('Div', [g.scalar(ni.std, 'target_std'), sd]), g.scalar(1, 'unit_gain')]);
  // (p * gain + target mean - mu * gain) * scaleC + shiftC = p * a + b, a and b per image and channel.
  const a = g.op('Mul', [gain, scaleC]);
  const b = g.op('Add', [g.op('Mul', [g.op('Sub', [g.scalar(ni.mean, 'target_mean'), g.op('Mul', [mu, gain])]), scaleC]), shiftC]);
  return g.op('Add', [g.op('Mul', [x, a]), b], {}, output);
}
