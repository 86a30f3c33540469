/**
 * npm run eval -- --model <bundle dir or name> --data <MVTec-layout category dir> [--split <file> --part validation|test]
 *                 [--out <dir>] [--update-card]
 * npm run eval -- --suite <folder of categories> --models <folder of bundles, each named like its category>
 *                 [--part validation|test] [--splits <folder of <category>.json>] [--out <dir>]
 *
 * --split names a declared validation part of the test split (e.g. ../shared/datasets/mtd/split_test.json);
 * --part validation scores only the images it lists (for choices), --part test all the others (for reporting).
 * Scores every test image through the server's own engine (decode -> preprocess -> composed graph) and
 * reports image AUROC, pixel AUROC, AUPRO (FPR <= 0.3), image F1 at the calibrated threshold and F1-max,
 * overall and per defect type. Writes report.json and summary.md.
 * --suite does that for every category under a folder (with --part, each category's split_test.json where it
 * has one, beside it or one level up, or <category>.json in --splits, which comes first; the whole test split
 * where it has none) and adds one table of them all
 * with their mean (suite.json, summary.md).
 */
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadBundle, type Bundle } from '../bundle/load.js';
import { loadConfig } from '../config.js';
import { evaluateCategory } from '../eval/run-category.js';
import { PARTS, readSplit, type Part, type SplitInfo } from '../eval/split.js';
import { findCategories, suiteMean, suiteSummary, type SuiteRow } from '../eval/suite.js';
import { partText } from '../eval/summary.js';
import { parseCli } from './args.js';

const USAGE = [
  'usage: npm run eval -- --model <bundle dir or name> --data <category dir> [--split <split_test.json> --part validation|test] [--out dir] [--update-card]',
  '       npm run eval -- --suite <folder of categories> --models <folder of bundles, each named (folder and manifest) like its category> [--part validation|test] [--splits models/splits] [--out dir]',
].join('\n');
const values = parseCli(
  {
    model: { type: 'string' },
    data: { type: 'string' },
    split: { type: 'string' },
    part: { type: 'string' },
    out: { type: 'string' },
    'update-card': { type: 'boolean', default: false },
    suite: { type: 'string' },
    models: { type: 'string' },
    splits: { type: 'string' },
  },
  USAGE,
);
const refuse = (message: string): never => {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
};
if (values.part !== undefined && !(PARTS as readonly string[]).includes(values.part)) refuse(`--part is ${PARTS.join(' or ')}`);
const part = values.part as Part | undefined;
const config = loadConfig();
const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);

if (values.suite !== undefined) await suite(values.suite);
else await single();

async function suite(root: string) {
  if (values.models === undefined) refuse('--suite needs --models');
  if (values.model !== undefined || values.data !== undefined || values.split !== undefined || values['update-card']) {
    refuse('--suite takes --models and --part (each category\'s own split), not --model, --data, --split or --update-card');
  }
  if (values.splits !== undefined && !(await isDir(values.splits))) refuse(`--splits ${values.splits} is not a folder`);
  const categories = await findCategories(root, values.splits);
  if (!categories.length) refuse(`no category (a folder with train/good and test/good) under ${root}`);
  // Every bundle is loaded before anything is scored: a missing or broken one fails in seconds, not after an hour.
  const bundles = new Map<string, Bundle>();
  const problems: string[] = [];
  for (const c of categories) {
    const dir = path.join(values.models!, c.name);
    if (!(await isDir(dir))) problems.push(`no bundle for ${c.name} (expected ${dir})`);
    else await loadBundle(dir).then((b) => bundles.set(c.name, b), (err) => problems.push(`${c.name}: ${(err as Error).message}`));
  }
  if (problems.length) refuse(`under ${values.models}: ${problems.join('; ')}`);
  const out = values.out ?? path.join('out', 'eval', `suite-${path.basename(path.resolve(root))}${part ? `-${part}` : ''}`);
  const rows: SuiteRow[] = [];
  const entries: Record<string, unknown>[] = [];
  for (const c of categories) {
    const bundle = bundles.get(c.name)!;
    const split = part && c.splitFile ? await readSplit(c.splitFile) : undefined;
    const { report } = await evaluateCategory({ bundle, data: c.data, split, part: split ? part : undefined, out: path.join(out, c.name), config });
    rows.push({ category: c.name, model: `${bundle.manifest.name} ${bundle.manifest.version}`, part: split ? part! : 'whole', metrics: report });
    entries.push({ category: c.name, data: path.resolve(c.data), model: { name: bundle.manifest.name, version: bundle.manifest.version }, part: rows.at(-1)!.part, scope: partText(report.split), report: path.join(c.name, 'report.json'), metrics: report });
    console.error(`  ${c.name}: image AUROC ${report.imageAUROC.toFixed(3)}, pixel AUROC ${report.pixelAUROC.toFixed(3)}, AUPRO ${report.pixelAUPRO.toFixed(3)}`);
  }
  const md = suiteSummary(root, rows);
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'summary.md'), md + '\n');
  await writeFile(path.join(out, 'suite.json'), JSON.stringify({
    root: path.resolve(root), part: part ?? 'whole',
    categories: entries,
    mean: suiteMean(rows),
  }, (k, v) => (k === 'curves' || k === 'perDefect' || k === 'perPath' ? undefined : v), 1) + '\n');
  console.log(md);
  console.log(`\nwritten to ${out}: summary.md, suite.json and one folder per category`);
}

async function single() {
  if (values.model === undefined || values.data === undefined) refuse(`missing ${[values.model === undefined && '--model', values.data === undefined && '--data'].filter(Boolean).join(', ')}`);
  if ((values.split === undefined) !== (part === undefined)) refuse(`--split and --part go together, --part being ${PARTS.join(' or ')}`);
  if (values.models !== undefined || values.splits !== undefined) refuse('--models and --splits go with --suite');
  const bundleDir = (await isDir(values.model!)) ? values.model! : path.join(config.MODELS_DIR, values.model!);
  const bundle = await loadBundle(bundleDir);
  const out = values.out ?? path.join('out', 'eval', `${bundle.manifest.name}-${path.basename(path.resolve(values.data!))}${part ? `-${part}` : ''}`);
  const split = values.split ? await readSplit(values.split) : undefined;
  const splitInfo: SplitInfo | undefined = split && { file: path.resolve(split.file), sha256: split.sha256, part: part! };
  const { md, files } = await evaluateCategory({ bundle, data: values.data!, split, part, out, config });
  console.log(md);
  console.log(`\nwritten to ${out}: ${files.join(', ')}`);

  if (values['update-card']) {
    const card = path.join(bundleDir, bundle.manifest.card ?? 'MODEL_CARD.md');
    const text = await readFile(card, 'utf8');
    // The card's headline block holds the test part; the validation part and the whole split have blocks of
    // their own. Cards from before splits existed have only the headline block, which held the whole split.
    const marker = part === 'test' ? 'metrics' : part === 'validation' ? 'metrics-validation' : text.includes('<!-- metrics-whole:start -->') ? 'metrics-whole' : 'metrics';
    const start = `<!-- ${marker}:start -->`, end = `<!-- ${marker}:end -->`;
    if (!text.includes(start) || !text.includes(end)) throw new Error(`${card} has no ${start} ... ${end} markers`);
    const dataName = path.basename(path.resolve(values.data!));
    const command = `npm run eval -- --model ${bundle.manifest.name} --data <.../${dataName}>${split ? ` --split <.../${path.basename(split.file)}> --part ${part}` : ''}`;
    const scope = part === 'validation' ? `on ${partText(splitInfo)}: these images chose the model, so the figures are optimistic`
      : part === 'test' ? `on ${partText(splitInfo)} (never seen in training, calibration or any choice)`
      : 'on the whole test split (never seen in training or calibration)' + (marker === 'metrics-whole' ? ', for comparison with earlier versions and papers: it includes the validation images that made choices' : '');
    const block = `${start}\nMeasured by \`${command}\` ${scope}:\n\n${md.split('\n').slice(4).join('\n')}\n${end}`;
    await writeFile(card, text.slice(0, text.indexOf(start)) + block + text.slice(text.indexOf(end) + end.length));
    console.log(`updated ${card}`);
  }
}
