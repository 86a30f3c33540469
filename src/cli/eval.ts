/**
 * npm run eval -- --model <bundle dir or name> --data <MVTec-layout category dir> [--split <file> --part validation|test]
 *                 [--out <dir>] [--update-card]
 *
 * --split names a declared validation part of the test split (e.g. ../shared/datasets/mtd/split_test.json);
 * --part validation scores only the images it lists (for choices), --part test all the others (for reporting).
 * Scores every test image through the server's own engine (decode -> preprocess -> composed graph) and
 * reports image AUROC, pixel AUROC, AUPRO (FPR <= 0.3), image F1 at the calibrated threshold and F1-max,
 * overall and per defect type. Writes report.json and summary.md.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadBundle } from '../bundle/load.js';
import { loadConfig } from '../config.js';
import { ModelEngine } from '../engine/model-engine.js';
import { testSamples } from '../eval/dataset.js';
import { PARTS, readSplit, selectPart, type Part, type SplitInfo } from '../eval/split.js';
import { computeReport, PathMetrics, scoreAll, type Report } from '../eval/evaluate.js';
import { histogramSpec, proSpec, renderPng, rocSpec, sampleGrid } from '../eval/plots.js';
import { decodeImage } from '../image/decode.js';
import { resizeForModel } from '../image/preprocess.js';
import { parseCli } from './args.js';

const USAGE = 'usage: npm run eval -- --model <bundle dir or name> --data <category dir> [--split <split_test.json> --part validation|test] [--out dir] [--update-card]';
const values = parseCli(
  {
    model: { type: 'string' },
    data: { type: 'string' },
    split: { type: 'string' },
    part: { type: 'string' },
    out: { type: 'string' },
    'update-card': { type: 'boolean', default: false },
  },
  USAGE,
  ['model', 'data'],
);
if ((values.split === undefined) !== (values.part === undefined) || (values.part !== undefined && !(PARTS as readonly string[]).includes(values.part))) {
  console.error(`--split and --part go together, --part being ${PARTS.join(' or ')}\n${USAGE}`);
  process.exit(2);
}
const part = values.part as Part | undefined;
const config = loadConfig();
const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);
const bundleDir = (await isDir(values.model)) ? values.model : path.join(config.MODELS_DIR, values.model);
const bundle = await loadBundle(bundleDir);
const out = values.out ?? path.join('out', 'eval', `${bundle.manifest.name}-${path.basename(path.resolve(values.data))}${part ? `-${part}` : ''}`);

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** Which images were scored, in words: a part of a declared split, or the whole test split. */
export function partText(split: SplitInfo | undefined): string {
  if (!split) return 'the whole test split';
  const what = split.part === 'validation' ? 'the images it lists, set aside for choices' : 'every test image it does not list; it decided nothing';
  return `the **${split.part} part** of \`${path.basename(split.file)}\` (sha256 ${split.sha256.slice(0, 16)}…: ${what})`;
}

export function summary(r: Report & { split?: SplitInfo }): string {
  const rows = [['all', r], ...Object.entries(r.perDefect)] as [string, Report['perDefect'][string]][];
  return [
    `# Evaluation of ${r.model.name} ${r.model.version}`,
    '',
    `Data: \`${r.data}\`, ${r.images} images: ${partText(r.split)}. Calibrated image threshold ${r.threshold.toFixed(4)}.`,
    `Scored by the service's own engine (npm run eval), ${(r.secondsPerImage * 1000).toFixed(1)} ms per image end to end on this machine.`,
    '',
    '| defect | images | image AUROC | pixel AUROC | AUPRO (FPR ≤ 0.3) | image F1 @ threshold | image F1-max |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(([d, g]) => `| ${d} | ${g.images} | ${fmt(g.imageAUROC)} | ${fmt(g.pixelAUROC)} | ${fmt(g.pixelAUPRO)} | ${fmt(g.imageF1)} | ${fmt(g.imageF1Max)} |`),
    '',
    'Per defect: that defect\'s images against all good test images.',
    ...(r.perPath
      ? [
          '',
          'Each path alone (its map through the same upsampling, smoothing and score reduction; before fusion):',
          '',
          '| path | kind | student layer → teacher layer | image AUROC | pixel AUROC | AUPRO |',
          '|---|---|---|---|---|---|',
          ...Object.entries(r.perPath).map(([name, p]) => `| \`${name}\` | ${p.path === 'direct' ? 'layer-wise' : `cross-layer (${p.path})`} | ${p.studentLayer} → ${p.teacherLayer} | ${fmt(p.imageAUROC)} | ${fmt(p.pixelAUROC)} | ${fmt(p.pixelAUPRO)} |`),
        ]
      : []),
  ].join('\n');
}

const split = values.split ? await readSplit(values.split) : undefined;
const splitInfo: SplitInfo | undefined = split && { file: path.resolve(split.file), sha256: split.sha256, part: part!, ...(split.rule ? { rule: split.rule } : {}), ...(split.seed !== undefined ? { seed: split.seed } : {}) };
const all = await testSamples(values.data);
const samples = split ? selectPart(all, split, part!) : all;
const engine = await ModelEngine.create(bundle, {
  providers: config.EXECUTION_PROVIDERS,
  workers: config.WORKERS,
  intraOpThreads: config.INTRA_OP_THREADS,
  maxBatch: config.MAX_BATCH,
  maxWaitMs: 5,
  maxQueue: 1 << 20,
});
console.error(`evaluating ${bundle.manifest.name} ${bundle.manifest.version} on ${samples.length} images (${engine.status.provider})`);
const t0 = performance.now();
let last = 0;
const perPath = new PathMetrics(bundle.manifest);
const scores = await scoreAll(engine, samples, (done) => {
  if (done === samples.length || performance.now() - last > 2000) {
    last = performance.now();
    process.stderr.write(`\r  scored ${done}/${samples.length} (${((100 * done) / samples.length).toFixed(0)} %)`);
  }
}, 16, perPath);
process.stderr.write('\n');
await engine.close();
const report = { ...computeReport(engine, path.resolve(values.data), scores, (performance.now() - t0) / 1000), perPath: perPath.report(), ...(splitInfo ? { split: splitInfo } : {}) };
await mkdir(out, { recursive: true });
await writeFile(path.join(out, 'report.json'), JSON.stringify(report, null, 1) + '\n');
const md = summary(report);
await writeFile(path.join(out, 'summary.md'), md + '\n');

// Plots: ROC (image and pixel), score histograms with the threshold, PRO curve, best and worst cases.
const plots: [string, Promise<Buffer>][] = [
  ['roc.png', renderPng(rocSpec([
    { name: `image (AUROC ${report.imageAUROC.toFixed(3)})`, points: report.curves.imageRoc },
    { name: `pixel (AUROC ${report.pixelAUROC.toFixed(3)})`, points: report.curves.pixelRoc },
  ]))],
  ['pro.png', renderPng(proSpec(report.curves.pro, report.pixelAUPRO))],
  ['scores.png', renderPng(histogramSpec(scores.map((s) => ({ score: s.score, group: s.sample.defect === 'good' ? 'good' : 'defective' })), report.threshold))],
];
const defective = scores.filter((s) => s.sample.defect !== 'good').sort((a, b) => b.score - a.score);
const good = scores.filter((s) => s.sample.defect === 'good').sort((a, b) => b.score - a.score);
const caption = (s: (typeof scores)[number], what: string) => `${what}: ${s.sample.defect} ${path.basename(s.sample.file)} score ${s.score.toFixed(3)}`;
const rows = [
  ...defective.slice(0, 3).map((s) => ({ s, label: caption(s, 'best detected') })),
  ...defective.slice(-3).reverse().map((s) => ({ s, label: caption(s, 'worst missed') })),
  ...good.slice(0, 2).map((s) => ({ s, label: caption(s, 'highest-scoring good') })),
];
const pixelsAtInput = async (file: string) => resizeForModel(await decodeImage(await readFile(file), { maxPixels: 400_000_000 }), bundle.manifest.input);
plots.push(['samples.png', sampleGrid(rows, bundle.manifest, pixelsAtInput)]);
for (const [name, png] of plots) await writeFile(path.join(out, name), await png);
console.log(md);
console.log(`\nwritten to ${out}: report.json, summary.md, ${plots.map(([n]) => n).join(', ')}`);

if (values['update-card']) {
  const card = path.join(bundleDir, bundle.manifest.card ?? 'MODEL_CARD.md');
  const text = await readFile(card, 'utf8');
  // The card's headline block holds the test part; the validation part and the whole split have blocks of
  // their own. Cards from before splits existed have only the headline block, which held the whole split.
  const marker = part === 'test' ? 'metrics' : part === 'validation' ? 'metrics-validation' : text.includes('<!-- metrics-whole:start -->') ? 'metrics-whole' : 'metrics';
  const start = `<!-- ${marker}:start -->`, end = `<!-- ${marker}:end -->`;
  if (!text.includes(start) || !text.includes(end)) throw new Error(`${card} has no ${start} ... ${end} markers`);
  const dataName = path.basename(path.resolve(values.data));
  const command = `npm run eval -- --model ${bundle.manifest.name} --data <.../${dataName}>${split ? ` --split <.../${path.basename(split.file)}> --part ${part}` : ''}`;
  const scope = part === 'validation' ? `on ${partText(splitInfo)}: these images chose the model, so the figures are optimistic`
    : part === 'test' ? `on ${partText(splitInfo)} (never seen in training, calibration or any choice)`
    : 'on the whole test split (never seen in training or calibration)' + (marker === 'metrics-whole' ? ', for comparison with earlier versions and papers: it includes the validation images that made choices' : '');
  const block = `${start}\nMeasured by \`${command}\` ${scope}:\n\n${md.split('\n').slice(4).join('\n')}\n${end}`;
  await writeFile(card, text.slice(0, text.indexOf(start)) + block + text.slice(text.indexOf(end) + end.length));
  console.log(`updated ${card}`);
}
