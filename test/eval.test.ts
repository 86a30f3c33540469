import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { loadBundle } from '../src/bundle/load.js';
import { ModelEngine } from '../src/engine/model-engine.js';
import { testSamples } from '../src/eval/dataset.js';
import { computeReport, PathMetrics, scoreAll } from '../src/eval/evaluate.js';
import { editedTiny, noise } from './helpers/fixtures.js';

const SIZE = 80;

async function grey(px: Uint8Array): Promise<Buffer> {
  return sharp(Buffer.from(px), { raw: { width: SIZE, height: SIZE, channels: 1 } }).png().toBuffer();
}

/** An MVTec-layout category: noise textures, and copies with a bright bar and its mask. */
async function category(root: string): Promise<string> {
  const cat = path.join(root, 'cat');
  for (const d of ['test/good', 'test/bar', 'ground_truth/bar']) await mkdir(path.join(cat, d), { recursive: true });
  for (let i = 0; i < 5; i++) {
    await writeFile(path.join(cat, 'test/good', `${i}.png`), await grey(Uint8Array.from(noise(SIZE * SIZE, 10 + i, 120), (v) => 60 + v)));
    const img = Uint8Array.from(noise(SIZE * SIZE, 20 + i, 120), (v) => 60 + v);
    const mask = new Uint8Array(SIZE * SIZE);
    for (let y = 20 + 8 * i; y < 26 + 8 * i; y++) for (let x = 10; x < 50; x++) { img[y * SIZE + x] = 250; mask[y * SIZE + x] = 255; }
    await writeFile(path.join(cat, 'test/bar', `${i}.png`), await grey(img));
    await writeFile(path.join(cat, 'ground_truth/bar', `${i}_mask.png`), await grey(mask));
  }
  return cat;
}

/** A temporary folder, and an engine on a copy of the tiny bundle edited by `edit`. */
async function tinyEngine(t: Test, edit: (manifest: any) => void): Promise<{ root: string; engine: ModelEngine }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-eval-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const engine = await ModelEngine.create(await loadBundle(await editedTiny(root, edit)), { providers: ['cpu'], workers: 1, intraOpThreads: 1, maxBatch: 4, maxWaitMs: 2, maxQueue: 1000 });
  t.teardown(() => engine.close());
  return { root, engine };
}

t.test('per-path metrics: a bundle that fuses one path alone scores like that path', async (t) => {
  let only = '';
  const { root, engine } = await tinyEngine(t, (m) => {
    m.fusion.paths.forEach((p: { weight: number }, i: number) => (p.weight = i === 4 ? 1 : 0));
    only = m.fusion.paths[4].student;
  });
  const cat = await category(root);
  const samples = await testSamples(cat);
  const perPath = new PathMetrics(engine.manifest);
  const scores = await scoreAll(engine, samples, undefined, 4, perPath);
  const report = { ...computeReport(engine, cat, scores, 1), perPath: perPath.report() };

  t.same(Object.keys(report.perPath), engine.manifest.student.outputs.map((o) => o.name));
  const p = report.perPath[only];
  t.equal(p.path, 'symmetric');
  t.equal(p.teacherLayer, 'block_9_add');
  // fused = (d - offset) / scale, smoothed the same way; max is monotone in it: identical ranking
  t.equal(p.imageAUROC, report.imageAUROC);
  t.ok(Math.abs(p.pixelAUROC - report.pixelAUROC) < 0.01, `pixel AUROC ${p.pixelAUROC} vs fused ${report.pixelAUROC}`);
  t.ok(Math.abs(p.pixelAUPRO - report.pixelAUPRO) < 0.02, `AUPRO ${p.pixelAUPRO} vs fused ${report.pixelAUPRO}`);
  for (const r of Object.values(report.perPath)) {
    for (const v of [r.imageAUROC, r.pixelAUROC, r.pixelAUPRO]) t.ok(v >= 0 && v <= 1, `${v} in [0, 1]`);
  }
});

t.test('letterbox: masks are fitted like the images and pixel metrics count the image window only', async (t) => {
  const { root, engine } = await tinyEngine(t, (m) => (m.input.fit = 'letterbox'));

  // 80x40 parts: at 64x64 the image fills rows 16-47; a bar near the top edge is mirrored into the border above
  const cat = path.join(root, 'cat');
  for (const d of ['test/good', 'test/bar', 'ground_truth/bar']) await mkdir(path.join(cat, d), { recursive: true });
  const wide = (px: Uint8Array) => sharp(Buffer.from(px), { raw: { width: 80, height: 40, channels: 1 } }).png().toBuffer();
  const img = Uint8Array.from(noise(80 * 40, 7, 120), (v) => 60 + v);
  const mask = new Uint8Array(80 * 40);
  for (let y = 2; y < 8; y++) for (let x = 10; x < 50; x++) { img[y * 80 + x] = 250; mask[y * 80 + x] = 255; }
  await writeFile(path.join(cat, 'test/good', '0.png'), await wide(Uint8Array.from(noise(80 * 40, 8, 120), (v) => 60 + v)));
  await writeFile(path.join(cat, 'test/bar', '0.png'), await wide(img));
  await writeFile(path.join(cat, 'ground_truth/bar', '0_mask.png'), await wide(mask));

  const scores = await scoreAll(engine, await testSamples(cat), undefined, 2);
  const bar = scores.find((s) => s.sample.defect === 'bar')!;
  t.same(bar.window, { left: 0, top: 16, width: 64, height: 32 });
  const want = await sharp(await wide(mask)).greyscale().resize(64, 32, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer();
  const inWindow = Array.from(bar.mask!.subarray(16 * 64, 48 * 64));
  t.same(inWindow, Array.from(want, (v) => (v > 127 ? 1 : 0)), 'the window holds the mask resized like the image');
  const border = bar.mask!.subarray(0, 16 * 64).reduce((a, v) => a + v, 0);
  t.ok(border > 0, `the border above mirrors the bar (${border} pixels) as it mirrors the image`);
  const report = computeReport(engine, cat, scores, 1);
  for (const v of [report.imageAUROC, report.pixelAUROC, report.pixelAUPRO]) t.ok(v >= 0 && v <= 1, `${v} in [0, 1]`);
  // The good part's borders raised to the highest value seen (the bins stay put): counted as normal pixels,
  // they would be false alarms at every threshold.
  const top = Math.max(...scores.map((s) => Math.max(...s.map)));
  const good = scores.find((s) => s.sample.defect === 'good')!;
  const raised = Float32Array.from(good.map, (v, i) => (i < 16 * 64 || i >= 48 * 64 ? top : v));
  const again = computeReport(engine, cat, scores.map((s) => (s === good ? { ...s, map: raised } : s)), 1);
  t.same([again.pixelAUROC, again.pixelAUPRO], [report.pixelAUROC, report.pixelAUPRO], 'the mirrored borders are not counted');
});

t.test('tile: each image is scored at its own size, its mask at that size, whatever the sizes in one set', async (t) => {
  const { root, engine } = await tinyEngine(t, (m) => {
    m.input.fit = 'tile';
    m.input.tile = { scale: 1, overlap: 16, blend: 'feather' };
  });
  const cat = path.join(root, 'cat');
  for (const d of ['test/good', 'test/bar', 'ground_truth/bar']) await mkdir(path.join(cat, d), { recursive: true });
  const png = (px: Uint8Array, w: number, h: number) => sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
  await writeFile(path.join(cat, 'test/good', '0.png'), await png(Uint8Array.from(noise(90 * 150, 8, 120), (v) => 60 + v), 90, 150));
  const img = Uint8Array.from(noise(100 * 130, 7, 120), (v) => 60 + v);
  const mask = new Uint8Array(100 * 130);
  for (let y = 100; y < 104; y++) for (let x = 10; x < 90; x++) { img[y * 100 + x] = 250; mask[y * 100 + x] = 255; }
  await writeFile(path.join(cat, 'test/bar', '0.png'), await png(img, 100, 130));
  await writeFile(path.join(cat, 'ground_truth/bar', '0_mask.png'), await png(mask, 100, 130));

  const scores = await scoreAll(engine, await testSamples(cat), undefined, 2);
  const bar = scores.find((s) => s.sample.defect === 'bar')!, good = scores.find((s) => s.sample.defect === 'good')!;
  t.same([bar.width, bar.map.length / bar.width], [100, 130], 'the defective image at its own size');
  t.same([good.width, good.map.length / good.width], [90, 150], 'the good one at its own');
  t.same(bar.window, { left: 0, top: 0, width: 100, height: 130 });
  t.same(Array.from(bar.mask!), Array.from(mask, (v) => (v > 127 ? 1 : 0)), 'the mask as drawn, not resized');
  const report = computeReport(engine, cat, scores, 1);
  for (const v of [report.imageAUROC, report.pixelAUROC, report.pixelAUPRO]) t.ok(v >= 0 && v <= 1, `${v} in [0, 1]`);
});
