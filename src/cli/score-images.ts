/**
 * Scores image files through the service's own path (decode -> preprocess -> composed graph) and writes
 * the anomaly maps; the training pipeline's `parity` command compares them with PyTorch.
 *
 *   node dist/src/cli/score-images.js --bundle models/x --list files.txt --out maps.f32
 *
 * Writes N x H x W float32 maps in list order; prints one JSON line per image with its score.
 */
import { open, readFile } from 'node:fs/promises';
import { loadBundle } from '../bundle/load.js';
import { scoreImage } from '../detect/detect.js';
import { ModelEngine } from '../engine/model-engine.js';
import { parseCli } from './args.js';

const values = parseCli(
  { bundle: { type: 'string' }, list: { type: 'string' }, out: { type: 'string' } },
  'usage: score-images --bundle DIR --list FILE --out FILE',
  ['bundle', 'list', 'out'],
);
const bundle = await loadBundle(values.bundle);
const engine = await ModelEngine.create(bundle, { providers: ['cpu'], workers: 1, intraOpThreads: 2, maxBatch: 4, maxWaitMs: 1, maxQueue: 1 << 16 });
const files = (await readFile(values.list, 'utf8')).split('\n').filter(Boolean);
const out = await open(values.out, 'w');
try {
  for (let i = 0; i < files.length; i++) {
    const s = await scoreImage(engine, await readFile(files[i]), i, { maxPixels: 400_000_000 });
    await out.write(new Uint8Array(s.map.buffer, s.map.byteOffset, s.map.byteLength));
    process.stdout.write(JSON.stringify({ file: files[i], score: s.score, mapWidth: s.mapWidth, mapHeight: s.mapHeight, tiles: s.tiles }) + '\n');
  }
} finally {
  await out.close();
  await engine.close();
}
