import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { testSamples } from '../src/eval/dataset.js';
import { readSplit, selectPart } from '../src/eval/split.js';
import { fromRoot } from '../src/paths.js';
import { editedTiny, noise, SHARED_MTD } from './helpers/fixtures.js';

const SIZE = 64;
const png = (seed: number, bar = false) => {
  const px = Uint8Array.from(noise(SIZE * SIZE, seed, 120), (v) => 60 + v);
  if (bar) for (let y = 20; y < 26; y++) for (let x = 8; x < 50; x++) px[y * SIZE + x] = 250;
  return sharp(Buffer.from(px), { raw: { width: SIZE, height: SIZE, channels: 1 } }).png().toBuffer();
};

/** A category with test/good/{0..3}.png and test/bar/{0..3}.png (masks too), and a split naming 1 of each. */
async function fixture(t: Test) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-split-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const cat = path.join(root, 'cat');
  for (const d of ['test/good', 'test/bar', 'ground_truth/bar']) await mkdir(path.join(cat, d), { recursive: true });
  const mask = Buffer.alloc(SIZE * SIZE);
  for (let y = 20; y < 26; y++) for (let x = 8; x < 50; x++) mask[y * SIZE + x] = 255;
  for (let i = 0; i < 4; i++) {
    await writeFile(path.join(cat, 'test/good', `${i}.png`), await png(i));
    await writeFile(path.join(cat, 'test/bar', `${i}.png`), await png(10 + i, true));
    await writeFile(path.join(cat, 'ground_truth/bar', `${i}_mask.png`), await sharp(mask, { raw: { width: SIZE, height: SIZE, channels: 1 } }).png().toBuffer());
  }
  const splitFile = path.join(root, 'split_test.json');
  await writeFile(splitFile, JSON.stringify({ rule: 'by hand', seed: 7, validation: { good: ['1'], bar: ['2', '3'] } }));
  return { root, cat, splitFile };
}

t.test('a split selects its validation images, and the test part is every other one', async (t) => {
  const { cat, splitFile } = await fixture(t);
  const split = await readSplit(splitFile);
  t.equal(split.sha256, createHash('sha256').update(await readFile(splitFile)).digest('hex'));
  t.equal(split.seed, 7);
  const all = await testSamples(cat);
  const val = selectPart(all, split, 'validation'), test = selectPart(all, split, 'test');
  t.same(val.map((s) => `${s.defect}/${path.basename(s.file)}`), ['bar/2.png', 'bar/3.png', 'good/1.png']);
  t.equal(test.length, all.length - val.length);
  t.notOk(test.some((s) => val.includes(s)), 'the parts do not overlap');
  t.ok(test.every((s) => s.defect !== 'bar' || s.mask), 'masks stay with their images');
});

t.test('a split naming images the data lacks is refused, not quietly narrowed', async (t) => {
  const { cat, root } = await fixture(t);
  const other = path.join(root, 'other.json');
  await writeFile(other, JSON.stringify({ validation: { good: ['1', 'nine'] } }));
  await t.rejects(async () => selectPart(await testSamples(cat), await readSplit(other), 'test'), /lists 1 validation images the data does not have \(e\.g\. test\/good\/nine\)/);
  await writeFile(other, '{"validation": ["good/1"]}');
  await t.rejects(readSplit(other), /no "validation" object/);
  await writeFile(other, 'not json');
  await t.rejects(readSplit(other), /is not JSON/);
});

t.test('MTD: the declared split is 175 validation and 407 test images', { skip: existsSync(path.join(SHARED_MTD, '..', 'split_test.json')) ? false : `SKIPPED: ${SHARED_MTD}/../split_test.json is not here (../shared)` }, async (t) => {
  const split = await readSplit(path.join(SHARED_MTD, '..', 'split_test.json'));
  const all = await testSamples(SHARED_MTD);
  t.equal(selectPart(all, split, 'validation').length, 175);
  t.equal(selectPart(all, split, 'test').length, 407);
});

const EVAL = fromRoot('dist', 'src', 'cli', 'eval.js');
t.test('npm run eval --split --part: the report names the split and the part, the card gets the part\'s block', { skip: existsSync(EVAL) ? false : 'SKIPPED: not built (npm run build)' }, async (t) => {
  const { root, cat, splitFile } = await fixture(t);
  const bundle = await editedTiny(root, () => {});
  const card = path.join(bundle, 'MODEL_CARD.md');
  await writeFile(card, (await readFile(card, 'utf8')) + '\n<!-- metrics-validation:start -->\n<!-- metrics-validation:end -->\n');
  const run = (args: string[]) => spawnSync(process.execPath, [EVAL, '--model', bundle, '--data', cat, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, WORKERS: '1' } });

  const out = path.join(root, 'out');
  const r = run(['--split', splitFile, '--part', 'validation', '--out', out, '--update-card']);
  t.equal(r.status, 0, r.stderr);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'));
  t.equal(report.images, 3);
  t.equal(report.split.part, 'validation');
  t.equal(report.split.sha256, createHash('sha256').update(await readFile(splitFile)).digest('hex'));
  t.match(await readFile(path.join(out, 'summary.md'), 'utf8'), /3 images: the \*\*validation part\*\* of `split_test\.json`/);
  const text = await readFile(card, 'utf8');
  t.match(text, /<!-- metrics-validation:start -->\nMeasured by `npm run eval -- --model tiny --data <\.\.\.\/cat> --split <\.\.\.\/split_test\.json> --part validation` on the \*\*validation part\*\*/);

  const test = run(['--split', splitFile, '--part', 'test', '--out', out]);
  t.equal(test.status, 0, test.stderr);
  t.equal(JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')).images, 5);

  const alone = run(['--part', 'test']);
  t.equal(alone.status, 2);
  t.match(alone.stderr, /--split and --part go together/);
  const wrong = run(['--split', splitFile, '--part', 'train']);
  t.equal(wrong.status, 2);
});
