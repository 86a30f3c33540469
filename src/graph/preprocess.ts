import type { InputSpec } from '../image/preprocess.js';
import { DataType, type GraphBuilder } from './builder.js';

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
 * coefficients. The image statistics are summed in float64: float32 sums over 196k pixels moved the model's input
 * by up to 2e-4 on real parts (measured), and the maps after the networks by 1e-3, ten times the parity tolerance.
 */
export function buildPreprocess(g: GraphBuilder, input: InputSpec, pixels: string, output: string): string {
  let bytes = g.op('Transpose', [pixels], { perm: [0, 3, 1, 2] });
  if (input.channelOrder === 'BGR') bytes = g.op('Gather', [bytes, g.ints([2, 1, 0], 'bgr')], { axis: 1 });
  const x = g.op('Cast', [bytes], { to: DataType.FLOAT });
  const { scale, mean, std } = input.scaling;
  const perChannel = [0, 1, 2];
  const ni = input.normalizeIntensity;
  if (!ni) {
    const scaleC = g.floats(perChannel.map((c) => scale / std[c]), [1, 3, 1, 1], 'scale');
    const shiftC = g.floats(perChannel.map((c) => -mean[c] / std[c]), [1, 3, 1, 1], 'shift');
    return g.op('Add', [g.op('Mul', [x, scaleC]), shiftC], {}, output);
  }
  // As toTensor: mean and std over all pixels and channels, std = sqrt(max(E[p^2] - mean^2, 0)), exact enough in
  // float64 (the sums are of integers below 2^53).
  const xd = g.op('Cast', [bytes], { to: DataType.DOUBLE });
  const n = g.doubles([3 * input.width * input.height], [], 'count');
  const mu = g.op('Div', [g.reduce('ReduceSum', xd, [1, 2, 3], 1), n]);
  const meanSq = g.op('Div', [g.reduce('ReduceSumSquare', xd, [1, 2, 3], 1), n]);
  const sd = g.op('Sqrt', [g.op('Max', [g.op('Sub', [meanSq, g.op('Mul', [mu, mu])]), g.doubles([0], [], 'zero')])]);
  const gain = g.op('Where', [g.op('Greater', [sd, g.doubles([1e-3], [], 'flat_std')]), g.op('Div', [g.doubles([ni.std], [], 'target_std'), sd]), g.doubles([1], [], 'unit_gain')]);
  // (p * gain + target mean - mean * gain) * scale_c + shift_c = p * a + b, a and b per image and channel.
  const scaleC = g.doubles(perChannel.map((c) => scale / std[c]), [1, 3, 1, 1], 'scale');
  const shiftC = g.doubles(perChannel.map((c) => -mean[c] / std[c]), [1, 3, 1, 1], 'shift');
  const a = g.op('Cast', [g.op('Mul', [gain, scaleC])], { to: DataType.FLOAT });
  const b = g.op('Cast', [g.op('Add', [g.op('Mul', [g.op('Sub', [g.doubles([ni.mean], [], 'target_mean'), g.op('Mul', [mu, gain])]), scaleC]), shiftC])], { to: DataType.FLOAT });
  return g.op('Add', [g.op('Mul', [x, a]), b], {}, output);
}
