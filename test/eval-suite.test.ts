import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { findCategories, suiteMean, suiteSummary, type SuiteRow } from '../src/eval/suite.js';
import { fromRoot } from '../src/paths.js';
import { noise, TINY } from './helpers/fixtures.js';

const SIZE = 64;
const grey = (px: Uint8Array) => sharp(Buffer.from(px), { raw: { width: SIZE, height: SIZE, channels: 1 } }).png().toBuffer();

async function tmp(t: Test): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-suite-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** An MVTec-layout category: noise textures (train and test), and copies with a bright bar and its mask. */
async function category(dir: string, seed: number, n = 4): Promise<string> {
  for (const d of ['train/good', 'test/good', 'test/bar', 'ground_truth/bar']) await mkdir(path.join(dir, d), { recursive: true });
  for (let i = 0; i < n; i++) {
    const texture = (s: number) => Uint8Array.from(noise(SIZE * SIZE, s, 100), (v) => 70 + v);
    await writeFile(path.join(dir, 'train/good', `${i}.png`), await grey(texture(seed + 100 + i)));
    await writeFile(path.join(dir, 'test/good', `${i}.png`), await grey(texture(seed + 200 + i)));
    const img = texture(seed + 300 + i);
    const mask = new Uint8Array(SIZE * SIZE);
    for (let y = 10 + 6 * i; y < 15 + 6 * i; y++) for (let x = 8; x < 40; x++) { img[y * SIZE + x] = 250; mask[y * SIZE + x] = 255; }
    await writeFile(path.join(dir, 'test/bar', `${i}.png`), await grey(img));
    await writeFile(path.join(dir, 'ground_truth/bar', `${i}_mask.png`), await grey(mask));
  }
  return dir;
}

t.test('findCategories: data set / category folders, a category given directly, split files beside or above', async (t) => {
  const root = await tmp(t);
  await category(path.join(root, 'setA', 'alpha'), 1, 1);
  await writeFile(path.join(root, 'setA', 'split_test.json'), JSON.stringify({ validation: { good: ['0'] } }));
  await category(path.join(root, 'beta'), 2, 1);
  await writeFile(path.join(root, 'beta', 'split_test.json'), JSON.stringify({ validation: { bar: ['0'] } }));
  await category(path.join(root, 'setB', 'gamma'), 3, 1);
  await mkdir(path.join(root, 'setB', 'notes', 'test', 'good'), { recursive: true }); // no train/good: not a category

  const found = await findCategories(root);
  t.same(found.map((c) => c.name), ['beta', 'alpha', 'gamma'], 'in folder order, depth first');
  t.same(Object.fromEntries(found.map((c) => [c.name, c.splitFile && path.relative(root, c.splitFile)])), {
    alpha: path.join('setA', 'split_test.json'), beta: path.join('beta', 'split_test.json'), gamma: undefined,
  });
  t.same((await findCategories(path.join(root, 'beta'))).map((c) => c.name), ['beta'], 'a category folder is a suite of one');

  const splits = path.join(root, 'splits');
  await mkdir(splits);
  await writeFile(path.join(splits, 'beta.json'), JSON.stringify({ validation: { good: ['0'] } }));
  await writeFile(path.join(splits, 'gamma.json'), JSON.stringify({ validation: { good: ['0'] } }));
  t.same(Object.fromEntries((await findCategories(root, splits)).map((c) => [c.name, c.splitFile && path.relative(root, c.splitFile)])), {
    alpha: path.join('setA', 'split_test.json'), beta: path.join('splits', 'beta.json'), gamma: path.join('splits', 'gamma.json'),
  }, 'a file in the splits folder comes before one with the data; the others keep theirs');

  await category(path.join(root, 'setB', 'alpha'), 4, 1);
  await t.rejects(findCategories(root), /named alike under .* \(alpha\)/);
});

t.test('suiteMean: unweighted over categories, an undefined figure left out', async (t) => {
  const row = (category: string, images: number, v: number, pixel: number): SuiteRow => ({
    category, model: 'm 1.0.0', part: 'whole', metrics: { images, imageAUROC: v, pixelAUROC: pixel, pixelAUPRO: v / 2, imageF1: v / 4, imageF1Max: v / 3, pixelF1: v / 5, pixelF1Max: v / 4 },
  });
  const rows = [row('a', 10, 0.9, 0.8), row('b', 1000, 0.7, NaN)];
  const m = suiteMean(rows);
  t.equal(m.categories, 2);
  t.ok(Math.abs(m.imageAUROC - 0.8) < 1e-12, 'each category once, whatever its size');
  t.ok(Math.abs(m.pixelAUROC - 0.8) < 1e-12, 'NaN left out');
  t.ok(Math.abs(m.pixelAUPRO - 0.4) < 1e-12);
  const md = suiteSummary('/data', rows);
  t.match(md, /\| a \| m 1.0.0 \| whole \| 10 \| 0.900 \| 0.800 \| 0.450 \| 0.225 \| 0.300 \|/);
  t.match(md, /\| b \| m 1.0.0 \| whole \| 1000 \| 0.700 \| n\/a \|/);
  t.match(md, /\| \*\*mean\*\* \|\s+\|\s+\|\s+\| 0.800 \| 0.800 \| 0.400 \|/);
});

const built = fromRoot('dist', 'src', 'cli', 'eval.js');
const skip = existsSync(built) ? false : 'SKIPPED: not built (npm run build)';
const evalCli = (args: string[]) => spawnSync(process.execPath, [built, ...args], { encoding: 'utf8', timeout: 300_000 });

t.test('npm run eval -- --suite: every category by its own bundle, each part as its split says, the mean of the table', { skip }, async (t) => {
  const root = await tmp(t);
  const data = path.join(root, 'data');
  await category(path.join(data, 'one', 'alpha'), 1);
  await writeFile(path.join(data, 'one', 'split_test.json'), JSON.stringify({ validation: { good: ['0', '1'], bar: ['0'] } }));
  await category(path.join(data, 'beta'), 2);
  const models = path.join(root, 'models');
  for (const name of ['alpha', 'beta']) {
    await cp(TINY, path.join(models, name), { recursive: true });
    const file = path.join(models, name, 'manifest.json');
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), name }));
  }

  const missing = evalCli(['--suite', data, '--models', path.join(root, 'empty')]);
  t.equal(missing.status, 2, 'a category without a bundle is refused before anything is scored');
  t.match(missing.stderr, /under .*empty: no bundle for beta .*; no bundle for alpha/);
  t.equal(evalCli(['--suite', data, '--models', models, '--model', 'tiny']).status, 2, '--model does not go with --suite');
  const misnamed = path.join(root, 'misnamed');
  await cp(models, misnamed, { recursive: true });
  await cp(TINY, path.join(misnamed, 'beta'), { recursive: true });
  const wrong = evalCli(['--suite', data, '--models', misnamed]);
  t.equal(wrong.status, 2, 'a bundle named unlike its category is refused');
  t.match(wrong.stderr, /beta: bundle beta: manifest name "tiny" differs/);
  t.notMatch(wrong.stderr, /\n\s+at /, 'no stack trace');

  const out = path.join(root, 'out');
  const r = evalCli(['--suite', data, '--models', models, '--part', 'validation', '--out', out]);
  t.equal(r.status, 0, r.stderr);
  const suite = JSON.parse(await readFile(path.join(out, 'suite.json'), 'utf8'));
  t.same(suite.categories.map((c: any) => [c.category, c.part, c.metrics.images]), [['beta', 'whole', 8], ['alpha', 'validation', 3]]);
  for (const c of suite.categories) {
    const own = JSON.parse(await readFile(path.join(out, c.report), 'utf8'));
    t.equal(c.metrics.imageAUROC, own.imageAUROC, `${c.category}: the table holds its own report's figures`);
  }
  const mean = (k: string) => suite.categories.reduce((a: number, c: any) => a + c.metrics[k], 0) / 2;
  t.ok(Math.abs(suite.mean.imageAUROC - mean('imageAUROC')) < 1e-12);
  t.ok(Math.abs(suite.mean.pixelAUPRO - mean('pixelAUPRO')) < 1e-12);
  t.match(await readFile(path.join(out, 'summary.md'), 'utf8'), /2 categories under/);
  t.match(await readFile(path.join(out, 'alpha', 'summary.md'), 'utf8'), /validation part/);
});
