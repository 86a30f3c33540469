import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fromRoot } from '../../src/paths.js';

const require = createRequire(fromRoot('package.json'));

/**
 * The original nsfwjs Keras network, run by @tensorflow/tfjs (pure-JS CPU backend), cut at the taps and
 * rebuilt for a height x width input. Returns NCHW feature maps per tap.
 */
export async function tfjsTaps(model: string, taps: string[], height: number, width: number, nhwc: Float32Array): Promise<Float32Array[]> {
  const dir = fromRoot('node_modules', 'nsfwjs', 'dist', 'models', model);
  const art = require(path.join(dir, 'model.min.js'));
  const data = Buffer.concat(art.weightsManifest.flatMap((g: any) => g.paths).map((p: string) => Buffer.from(require(path.join(dir, `${p}.min.js`)), 'base64')));
  const topo = structuredClone(art.modelTopology);
  const cfg = topo.model_config.config;
  cfg.layers[0].config.batch_input_shape = [null, height, width, 3];
  const byName = new Map<string, any>(cfg.layers.map((l: any) => [l.name, l]));
  const keep = new Set<string>();
  const stack = [...taps];
  while (stack.length) {
    const n = stack.pop()!;
    if (keep.has(n)) continue;
    keep.add(n);
    for (const i of byName.get(n).inbound_nodes[0] ?? []) stack.push(i[0]);
  }
  cfg.layers = cfg.layers.filter((l: any) => keep.has(l.name));
  cfg.output_layers = taps.map((t) => [t, 0, 0]);
  let off = 0;
  const specs: any[] = [], parts: Buffer[] = [];
  for (const s of art.weightsManifest.flatMap((g: any) => g.weights)) {
    const n = s.shape.reduce((a: number, b: number) => a * b, 1);
    const bytes = s.quantization ? n : 4 * n;
    if (keep.has(s.name.split('/')[0])) {
      specs.push(s);
      parts.push(data.subarray(off, off + bytes));
    }
    off += bytes;
  }
  const wd = Buffer.concat(parts);
  const net = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topo, weightSpecs: specs, weightData: wd.buffer.slice(wd.byteOffset, wd.byteOffset + wd.byteLength) as ArrayBuffer }));
  const outs = net.predict(tf.tensor4d(nhwc, [1, height, width, 3])) as tf.Tensor[];
  return Promise.all((Array.isArray(outs) ? outs : [outs]).map(async (o) => (await tf.transpose(o, [0, 3, 1, 2]).data()) as Float32Array));
}
