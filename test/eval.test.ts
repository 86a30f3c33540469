import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { loadBundle } from '../src/bundle/load.js';
import { ModelEngine } from '../src/engine/model-engine.js';
import { testSamples } from '../src/eval/dataset.js';
import { computeReport, PathMetrics, scoreAll } from '../src/eval/evaluate.js';
import { noise } from './helpers/fixtures.js';
import { TINY } from './helpers/fixtures.js';

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

t.test('per-path metrics: a bundle that fuses one path alone scores like that path', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-eval-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = path.join(root, 'tiny');
  await cp(TINY, dir, { recursive: true });
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  m.fusion.paths.forEach((p: { weight: number }, i: number) => (p.weight = i === 4 ? 1 : 0));
  await writeFile(file, JSON.stringify(m));
  const only = m.fusion.paths[4].student as string;

  const engine = await ModelEngine.create(await loadBundle(dir), { providers: ['cpu'], workers: 1, intraOpThreads: 1, maxBatch: 4, maxWaitMs: 2, maxQueue: 1000 });
  t.teardown(() => engine.close());
  const cat = await category(root);
  const samples = await testSamples(cat);
  const perPath = new PathMetrics(engine.manifest);
  const scores = await scoreAll(engine, samples, undefined, 4, perPath);
  const report = { ...computeReport(engine, cat, scores, 1), perPath: perPath.report() };

  t.same(Object.keys(report.perPath), m.student.outputs.map((o: { name: string }) => o.name));
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
