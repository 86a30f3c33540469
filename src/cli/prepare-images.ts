/**
 * Prepares images for the training pipeline with the service's own decode and resize code, so the
 * student is trained on exactly the pixels the server will feed it (no PIL-vs-sharp drift).
 *
 *   node dist/src/cli/prepare-images.js --list files.txt --width 256 --height 256 --fit stretch --out images.u8
 *
 * Writes N x height x width x 3 uint8 (RGB, interleaved) in list order, and prints one JSON line per image
 * with its original size. With --fit tile --scale S, each image instead at the inspection scale, mirror-extended
 * to at least one width x height tile (src/image/preprocess.ts resizeForTiles), one after the other; its JSON line
 * then also gives the written size (`rgbWidth`, `rgbHeight`) and the scaled image's own (`scaledWidth`, `scaledHeight`).
 */
import { open, readFile } from 'node:fs/promises';
import { decodeImage } from '../image/decode.js';
import { resizeForModel, resizeForTiles, type Fit } from '../image/preprocess.js';
import { parseCli } from './args.js';

const values = parseCli(
  {
    list: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    fit: { type: 'string', default: 'stretch' },
    scale: { type: 'string', default: '1' },
    out: { type: 'string' },
    'max-pixels': { type: 'string', default: String(100_000_000) },
  },
  'usage: prepare-images --list FILE --width W --height H [--fit stretch|center-crop|letterbox|tile] [--scale S (tile)] [--max-pixels N] --out FILE',
  ['list', 'width', 'height', 'out'],
);
if (!['stretch', 'center-crop', 'letterbox', 'tile'].includes(values.fit)) {
  console.error(`--fit must be stretch, center-crop, letterbox or tile, not ${values.fit}`);
  process.exit(2);
}
const scale = Number(values.scale);
if (!(scale > 0)) {
  console.error(`--scale must be a positive number, not ${values.scale}`);
  process.exit(2);
}
const input = {
  width: Number(values.width),
  height: Number(values.height),
  fit: values.fit as Fit,
  channelOrder: 'RGB' as const,
  scaling: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
  // Only the scale matters here: the grid is the pipeline's (mixdistill/tiles.py).
  ...(values.fit === 'tile' ? { tile: { scale, overlap: 0, blend: 'mean' as const } } : {}),
};
const files = (await readFile(values.list, 'utf8')).split('\n').filter(Boolean);
const out = await open(values.out, 'w');
try {
  for (let i = 0; i < files.length; i++) {
    const image = await decodeImage(await readFile(files[i]), { maxPixels: Number(values['max-pixels']) }, i);
    if (input.fit === 'tile') {
      const t = await resizeForTiles(image, input, i);
      await out.write(t.rgb);
      const sizes = { rgbWidth: t.width, rgbHeight: t.height, scaledWidth: t.scaled.width, scaledHeight: t.scaled.height };
      process.stdout.write(JSON.stringify({ file: files[i], width: image.width, height: image.height, ...sizes }) + '\n');
      continue;
    }
    const rgb = await resizeForModel(image, input, i);
    await out.write(rgb);
    process.stdout.write(JSON.stringify({ file: files[i], width: image.width, height: image.height }) + '\n');
  }
} finally {
  await out.close();
}
