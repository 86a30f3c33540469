import sharp from 'sharp';
import t from 'tap';
import { decodeImage } from '../src/image/decode.js';
import { heatmapPng } from '../src/detect/encode.js';
import { intensityRemap, letterboxWindow, mapPlacement, outputSize, placement, resizeForModel, scalePlacement, toTensor } from '../src/image/preprocess.js';

const limits = { maxPixels: 10_000_000 };
const input = { width: 8, height: 8, fit: 'stretch' as const, channelOrder: 'RGB' as const, scaling: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] } };

t.test('toTensor: HWC uint8 -> planar float with scale, mean, std and channel order', async (t) => {
  const rgb = Uint8Array.from([10, 20, 30, 40, 50, 60]); // 2x1 pixels
  const x = toTensor(rgb, 2, 1, { scale: 1 / 255, mean: [0.5, 0, 0], std: [0.25, 1, 2] }, 'RGB');
  const want = [(10 / 255 - 0.5) / 0.25, (40 / 255 - 0.5) / 0.25, 20 / 255, 50 / 255, 30 / 255 / 2, 60 / 255 / 2];
  want.forEach((v, i) => t.ok(Math.abs(x[i] - v) < 1e-6, `element ${i}`));
  const bgr = toTensor(rgb, 2, 1, { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, 'BGR');
  t.same(Array.from(bgr), [30, 60, 20, 50, 10, 40]);
  t.throws(() => toTensor(rgb, 3, 1, input.scaling, 'RGB'));
});

t.test('intensity normalisation remaps each image to the target mean and std', async (t) => {
  const rgb = Uint8Array.from([10, 10, 10, 30, 30, 30]); // mean 20, std 10
  t.same(intensityRemap(rgb, { mean: 100, std: 40 }), { gain: 4, bias: 20 });
  const x = toTensor(rgb, 2, 1, { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, 'RGB', undefined, 0, { mean: 100, std: 40 });
  t.same(Array.from(x), [60, 140, 60, 140, 60, 140]);
  t.same(intensityRemap(Uint8Array.from([7, 7, 7]), { mean: 100, std: 40 }), { gain: 1, bias: 93 }, 'a flat image only moves');
});

t.test('placement of the model window', async (t) => {
  t.same(placement(300, 200, { width: 256, height: 256, fit: 'stretch' }), { left: 0, top: 0, width: 300, height: 200 });
  t.same(placement(300, 200, { width: 256, height: 256, fit: 'center-crop' }), { left: 50, top: 0, width: 200, height: 200 });
  t.same(placement(100, 400, { width: 64, height: 32, fit: 'center-crop' }), { left: 0, top: 175, width: 100, height: 50 });
});

t.test('outputSize shrinks to the longest side, never grows; scalePlacement moves the window with it', async (t) => {
  t.same(outputSize(400, 100, 200), { width: 200, height: 50 });
  t.same(outputSize(100, 400, 200), { width: 50, height: 200 });
  t.same(outputSize(400, 100, 1000), { width: 400, height: 100 });
  t.same(outputSize(400, 100), { width: 400, height: 100 });
  t.same(outputSize(1000, 3, 100), { width: 100, height: 1 }, 'at least a pixel');
  // center-crop of a 400x100 image into a square input: the map lands on the central 100x100 window.
  const at = mapPlacement(400, 100, { width: 8, height: 8, fit: 'center-crop' });
  t.same(at.to, { left: 150, top: 0, width: 100, height: 100 });
  t.same(scalePlacement(at, { width: 400, height: 100 }, { width: 200, height: 50 }), { from: at.from, to: { left: 75, top: 0, width: 50, height: 50 } });
  t.equal(scalePlacement(at, { width: 400, height: 100 }, { width: 400, height: 100 }), at, 'unchanged at the same size');
});

t.test('letterbox: the image keeps its aspect ratio in a centred window of the input', async (t) => {
  const square = { width: 256, height: 256, fit: 'letterbox' as const };
  t.same(placement(580, 222, square), { left: 0, top: 0, width: 580, height: 222 }, 'the model sees all of the image');
  // 222 * 256 / 580 = 97.99 -> 98 rows, (256 - 98) / 2 = 79 above
  t.same(letterboxWindow(580, 222, square), { left: 0, top: 79, width: 256, height: 98 });
  t.same(letterboxWindow(125, 300, square), { left: 74, top: 0, width: 107, height: 256 }, '106.67 columns round to 107, (256 - 107) / 2 floors to 74');
  t.same(letterboxWindow(3000, 1, square), { left: 0, top: 127, width: 256, height: 1 }, 'never thinner than a pixel');
  t.same(mapPlacement(580, 222, square), { from: { left: 0, top: 79, width: 256, height: 98 }, to: { left: 0, top: 0, width: 580, height: 222 } });
  t.same(mapPlacement(300, 200, { width: 256, height: 256, fit: 'center-crop' }),
    { from: { left: 0, top: 0, width: 256, height: 256 }, to: { left: 50, top: 0, width: 200, height: 200 } });
});

t.test('letterbox: the borders mirror the image, edge rows repeated (sharp extend "mirror")', async (t) => {
  const rows = Uint8Array.from([10, 10, 10, 10, 200, 200, 200, 200]); // 4x2, grey
  const img = await decodeImage(await sharp(Buffer.from(rows), { raw: { width: 4, height: 2, channels: 1 } }).png().toBuffer(), limits);
  const rgb = await resizeForModel(img, { ...input, width: 4, height: 6, fit: 'letterbox' });
  const column = Array.from({ length: 6 }, (_, y) => rgb[y * 4 * 3]);
  t.same(column, [200, 10, 10, 200, 200, 10], 'window rows 2-3 hold the image; rows 1 and 4 repeat its edges, 0 and 5 mirror on');
});

t.test('letterbox: the heatmap on the original image comes from the image window only', async (t) => {
  const W = 4, H = 6;
  const map = new Uint8Array(W * H * 3).fill(255);
  map.fill(0, 2 * W * 3, 4 * W * 3); // window rows 2-3 dark, the mirrored borders bright
  const at = mapPlacement(8, 4, { width: W, height: H, fit: 'letterbox' });
  t.same(at.from, { left: 0, top: 2, width: 4, height: 2 });
  const png = await heatmapPng(map, W, H, 8, 4, at);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  t.same([info.width, info.height], [8, 4]);
  t.equal(Math.max(...data), 0, 'no border pixel reaches the heatmap');
});

async function pixels(bytes: Buffer) {
  const img = await decodeImage(bytes, limits);
  return { img, rgb: await resizeForModel(img, input) };
}

t.test('grey, 16-bit, alpha, palette and CMYK images become 8-bit RGB', async (t) => {
  const grey = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#404040' } }).toColourspace('b-w').png().toBuffer();
  t.equal((await sharp(grey).metadata()).channels, 1);
  const g = await pixels(grey);
  t.equal(g.rgb.length, 8 * 8 * 3);
  t.same([g.rgb[0], g.rgb[1], g.rgb[2]], [64, 64, 64], 'grey replicated to three channels');

  const deep = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).toColourspace('rgb16').png().toBuffer();
  t.equal((await sharp(deep).metadata()).depth, 'ushort');
  t.same(Array.from((await pixels(deep)).rgb.subarray(0, 3)), [128, 128, 128], '16-bit scaled to 8-bit');

  const alpha = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
  const a = (await pixels(alpha)).rgb;
  t.ok(a[0] > 100 && a[0] < 150 && a[1] === 0, `alpha flattened onto black (${a[0]},${a[1]},${a[2]})`);

  const palette = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } }).png({ palette: true }).toBuffer();
  t.same(Array.from((await pixels(palette)).rgb.subarray(0, 3)), [0, 255, 0]);

  const cmyk = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#0000ff' } }).toColourspace('cmyk').jpeg().toBuffer();
  t.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const c = (await pixels(cmyk)).rgb;
  t.ok(c[2] > 120 && c[2] > 2 * c[0] && c[2] > 2 * c[1], `CMYK converted to RGB, blue stays blue (${c[0]},${c[1]},${c[2]})`);
});

t.test('EXIF orientation is applied', async (t) => {
  const rotated = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ffffff' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const img = await decodeImage(rotated, limits);
  t.same([img.width, img.height], [20, 40], 'orientation 6 turns 40x20 upright to 20x40');
});

t.test('first frame of an animated GIF', async (t) => {
  const frames = Buffer.concat([Buffer.alloc(8 * 8 * 3, 255), Buffer.alloc(8 * 8 * 3, 0)]);
  const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } as never }).gif().toBuffer();
  const meta = await sharp(gif).metadata();
  t.equal(meta.pages, 2);
  const img = await decodeImage(gif, limits);
  t.same([img.width, img.height], [8, 8]);
  t.equal((await resizeForModel(img, input))[0], 255, 'the first (white) frame');
});
