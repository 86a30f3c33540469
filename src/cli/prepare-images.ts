/**
 * Prepares images for the training pipeline with the service's own decode and resize code, so the
 * student is trained on exactly the pixels the server will feed it (no PIL-vs-sharp drift).
 *
 *   node dist/src/cli/prepare-images.js --list files.txt --width 256 --height 256 --fit stretch --out images.u8
 *
 * Writes N x height x width x 3 uint8 (RGB, interleaved) in list order, and prints one JSON line per image
 * with its original size.
 */
import { open, readFile } from 'node:fs/promises';
import { decodeImage } from '../image/decode.js';
import { resizeForModel, type Fit } from '../image/preprocess.js';
import { parseCli } from './args.js';

const values = parseCli(
  {
    list: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    fit: { type: 'string', default: 'stretch' },
    out: { type: 'string' },
    'max-pixels': { type: 'string', default: String(100_000_000) },
  },
  'usage: prepare-images --list FILE --width W --height H [--fit stretch|center-crop|letterbox] [--max-pixels N] --out FILE',
  ['list', 'width', 'height', 'out'],
);
if (!['stretch', 'center-crop', 'letterbox'].includes(values.fit)) {
  console.error(`--fit must be stretch, center-crop or letterbox, not ${values.fit}`);
  process.exit(2);
}
const input = {
  width: Number(values.width),
  height: Number(values.height),
  fit: values.fit as Fit,
  channelOrder: 'RGB' as const,
  scaling: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
};
const files = (await readFile(values.list, 'utf8')).split('\n').filter(Boolean);
const out = await open(values.out, 'w');
try {
  for (let i = 0; i < files.length; i++) {
    const image = await decodeImage(await readFile(files[i]), { maxPixels: Number(values['max-pixels']) }, i);
    const rgb = await resizeForModel(image, input, i);
    await out.write(rgb);
    process.stdout.write(JSON.stringify({ file: files[i], width: image.width, height: image.height }) + '\n');
  }
} finally {
  await out.close();
}
