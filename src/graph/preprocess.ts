import type { InputSpec } from '../image/preprocess.js';
import type { GraphBuilder } from './builder.js';

/** The composed graph's input: the resized image's 8-bit pixels as sharp gives them, [N, H, W, 3] RGB. */
export const PIXELS_INPUT = 'pixels';

/**
 * The model's float input from 8-bit pixels, as ONNX nodes (mirrors toTensor in src/image/preprocess.ts):
 * optional per-image intensity remap (all channels together: p' = p * gain + bias, gain = target std / std, 1 for
 * a flat image), channel order, x[c] = (p' * scale - mean[c]) / std[c], HWC -> CHW. In the graph rather than on
 * the main thread, a quarter of the bytes cross to the worker (and, on GPU nodes, to the device), and the per-pixel
 * loop runs where the session's threads are.
 */
export function buildPreprocess(g: GraphBuilder, input: InputSpec, pixels: string, output: string): string {
  let x = g.op('Cast', [pixels], { to: 1 /* FLOAT */ });
  const ni = input.normalizeIntensity;
  if (ni) {
    const mean = g.reduce('ReduceMean', x, [1, 2, 3], 1);
    const centred = g.op('Sub', [x, mean]);
    // Two passes (mean, then the centred squares): E[x^2] - E[x]^2 loses digits in float32 on near-flat images.
    const std = g.op('Sqrt', [g.reduce('ReduceMean', g.op('Mul', [centred, centred]), [1, 2, 3], 1)]);
    const flat = g.op('Greater', [std, g.scalar(1e-3, 'flat_std')]);
    const gain = g.op('Where', [flat, g.op('Div', [g.scalar(ni.std, 'target_std'), std]), g.scalar(1, 'unit_gain')]);
    // p * gain + (target mean - mean * gain) = (p - mean) * gain + target mean
    x = g.op('Add', [g.op('Mul', [centred, gain]), g.scalar(ni.mean, 'target_mean')]);
  }
  if (input.channelOrder === 'BGR') x = g.op('Gather', [x, g.ints([2, 1, 0], 'bgr')], { axis: 3 });
  const { scale, mean, std } = input.scaling;
  const mul = g.floats([0, 1, 2].map((c) => scale / std[c]), [1, 1, 1, 3], 'scale');
  const add = g.floats([0, 1, 2].map((c) => -mean[c] / std[c]), [1, 1, 1, 3], 'shift');
  x = g.op('Add', [g.op('Mul', [x, mul]), add]);
  return g.op('Transpose', [x], { perm: [0, 3, 1, 2] }, output);
}
