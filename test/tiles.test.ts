import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { loadBundle } from '../src/bundle/load.js';
import { blendTiles, cropTile, tileGrid, tileStarts, tileWeights } from '../src/maps/tiles.js';
import { maxAbsDiff } from './helpers/close.js';
import { editedTiny } from './helpers/fixtures.js';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';

// Values computed by the pipeline's reference (models/pipeline/tests/make_reference_math.py, mixdistill/tiles.py).
const ref = JSON.parse(readFileSync(new URL('./fixtures/reference-math.json', import.meta.url), 'utf8')).tiles;

t.test('tile starts and grid match the pipeline', async (t) => {
  for (const [key, expected] of Object.entries(ref.starts)) {
    const [n, tile, overlap] = key.split(',').map(Number);
    t.same(tileStarts(n, tile, overlap), expected, key);
  }
  t.same(tileGrid(ref.width, ref.height, ref.tileW, ref.tileH, ref.overlap).map((x) => [x.left, x.top]), ref.tiles);
  t.throws(() => tileStarts(100, 64, 64), /overlap 64 must be in \[0, 64\)/);
});

t.test('every pixel is covered, neighbours share at least the overlap, tiles stay inside the image', async (t) => {
  for (const [n, tile, overlap] of [[1250, 256, 32], [500, 256, 32], [257, 256, 0], [999, 100, 99]]) {
    const s = tileStarts(n, tile, overlap);
    t.equal(s[0], 0);
    t.equal(s.at(-1)! + tile, n, `${n}: the last tile ends at the edge`);
    for (let i = 1; i < s.length; i++) t.ok(s[i - 1] + tile - s[i] >= overlap, `${n}: tiles ${i - 1} and ${i} share >= ${overlap}`);
    const fewer = Math.ceil((n - overlap) / (tile - overlap)) - 1;
    t.ok(fewer < 1 || (fewer - 1) * (tile - overlap) + tile < n, `${n}: one tile fewer would not cover it`);
  }
});

t.test('blending and feather weights match the pipeline; mean of equal maps is the map', async (t) => {
  const maps = ref.maps.map((m: number[]) => Float32Array.from(m));
  const tiles = ref.tiles.map(([left, top]: number[]) => ({ left, top }));
  t.ok(maxAbsDiff(tileWeights(ref.tileW, ref.tileH, ref.overlap, 'feather'), ref.feather) < 1e-6);
  for (const blend of ['mean', 'feather'] as const) {
    const got = blendTiles(maps, tiles, ref.tileW, ref.tileH, ref.width, ref.height, tileWeights(ref.tileW, ref.tileH, ref.overlap, blend));
    t.ok(maxAbsDiff(got, ref.blended[blend]) < 1e-6, `${blend}: max diff ${maxAbsDiff(got, ref.blended[blend])}`);
  }
  // Tiles cut from one map and blended back give that map, whatever the weights.
  const W = 17, H = 13, whole = Float32Array.from({ length: W * H }, (_, i) => Math.sin(i));
  const cut = tiles.map((tl: { left: number; top: number }) => Float32Array.from({ length: 80 }, (_, i) => whole[(tl.top + Math.floor(i / 10)) * W + tl.left + (i % 10)]));
  t.ok(maxAbsDiff(blendTiles(cut, tiles, 10, 8, W, H, tileWeights(10, 8, 3, 'feather')), whole) < 1e-6);
  // A tile past the image (mirror extension) only contributes its inside part.
  t.same(Array.from(blendTiles([Float32Array.from([1, 2, 3, 4])], [{ left: 0, top: 0 }], 2, 2, 1, 2, tileWeights(2, 2, 0, 'mean'))), [1, 3]);
  const rgb = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => i);
  t.same(Array.from(cropTile(rgb, 4, { left: 2, top: 1 }, 2, 2)), [18, 19, 20, 21, 22, 23, 30, 31, 32, 33, 34, 35]);
});

const tileManifest = (overlap = 16) => (m: any) => {
  m.input.fit = 'tile';
  m.input.tile = { scale: 1, overlap, blend: 'feather' };
};

t.test('the loader refuses a tile fit without its settings, settings without the fit, and an overlap as wide as a tile', async (t) => {
  const cases: [string, (m: any) => void, RegExp][] = [
    ['no-settings', (m) => { m.input.fit = 'tile'; }, /input\.tile is required with input\.fit tile/],
    ['settings-alone', (m) => { m.input.tile = { scale: 1, overlap: 8, blend: 'mean' }; }, /refused with any other fit/],
    ['wide-overlap', tileManifest(64), /overlap 64 must be below/],
    ['bad-blend', (m) => { tileManifest()(m); m.input.tile.blend = 'median'; }, /does not match bundle\.schema\.json/],
  ];
  for (const [name, edit, message] of cases) {
    const dir = await mkdtemp(path.join(os.tmpdir(), `mixdistill-tile-${name}-`));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await t.rejects(loadBundle(await editedTiny(dir, edit)), message, name);
  }
});

t.test('a tiled model answers at the image size, counts tiles, and refuses an image over MAX_TILES with 413', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-tiled-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await editedTiny(dir, tileManifest());
  const app = await testApp({ MODELS_DIR: dir, MAX_TILES: '12' });
  t.teardown(() => app.close());
  const tall = await texture(100, 250, 'png');
  const res = await app.inject({ method: 'POST', url: '/detect?include=heatmap,mask,map,regions,paths', ...multipart([{ data: tall, type: 'image/png' }]) });
  t.equal(res.statusCode, 200, 'answered');
  const r = res.json().results[0];
  t.equal(r.tiles, 10, '2 x 5 tiles of 64 for 100 x 250 with overlap 16');
  for (const k of ['heatmap', 'mask', 'map']) {
    const meta = await sharp(Buffer.from(r[k], 'base64')).metadata();
    t.same([meta.width, meta.height], [100, 250], `${k} at the image's size`);
  }
  for (const p of r.paths) {
    const meta = await sharp(Buffer.from(p.map, 'base64')).metadata();
    t.same([meta.width, meta.height], [100, 250], `path ${p.name} at the inspection scale`);
  }
  for (const g of r.regions) t.ok(g.bbox.x + g.bbox.width <= 100 && g.bbox.y + g.bbox.height <= 250, 'regions inside the image');
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /mixdistill_tiles_total\{model="tiny"\} 10/);

  const big = await texture(200, 250, 'png');
  const refused = await app.inject({ method: 'POST', url: '/detect', ...multipart([{ data: big, type: 'image/png' }]) });
  t.equal(refused.statusCode, 413);
  t.equal(refused.json().code, 'TOO_MANY_TILES');
  t.match(refused.json().message, /200x250 makes 20 tiles of 64x64 for this model, over the limit of 12 \(MAX_TILES\)/);
});

t.test('an image of exactly one tile scores as the same bundle untiled does (host smoothing = graph smoothing)', async (t) => {
  const plainDir = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-plain-'));
  const tiledDir = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-onetile-'));
  t.teardown(() => Promise.all([rm(plainDir, { recursive: true, force: true }), rm(tiledDir, { recursive: true, force: true })]));
  await editedTiny(plainDir, () => undefined);
  await editedTiny(tiledDir, tileManifest());
  const plain = await testApp({ MODELS_DIR: plainDir });
  const tiled = await testApp({ MODELS_DIR: tiledDir });
  t.teardown(() => Promise.all([plain.close(), tiled.close()]));
  const img = await texture(64, 64, 'png', 11);
  const ask = async (app: typeof plain) => (await app.inject({ method: 'POST', url: '/detect?include=map', ...multipart([{ data: img, type: 'image/png' }]) })).json().results[0];
  const [a, b] = [await ask(plain), await ask(tiled)];
  t.equal(b.tiles, 1);
  t.ok(Math.abs(a.score - b.score) < 1e-4, `score ${a.score} against ${b.score}`);
  const [ga, gb] = await Promise.all([a.map, b.map].map((m) => sharp(Buffer.from(m, 'base64')).raw().toBuffer()));
  t.ok(maxAbsDiff(Float32Array.from(ga), Array.from(gb)) <= 1, 'grey maps equal to a grey level');
});
