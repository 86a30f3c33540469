import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { GroupMetrics } from './evaluate.js';
import { fmt } from './summary.js';

/**
 * A development suite: every MVTec-AD-layout category under one folder (e.g. ../shared/datasets), each judged
 * by its own bundle, so that a change to the recipe is judged on all of them at once.
 */
export interface SuiteCategory {
  /** The category folder's name, which is also the name of its bundle's folder under --models. */
  name: string;
  /** The category folder. */
  data: string;
  /** A declared split of its test images (<name>.json in --splits, else split_test.json in the category folder or the one above), if any. */
  splitFile?: string;
}

const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);
const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);
const isCategory = async (dir: string) => (await isDir(path.join(dir, 'train', 'good'))) && isDir(path.join(dir, 'test', 'good'));

/**
 * The categories at most two levels below `root` (data set / category), or `root` itself if it is one. A split
 * file `<category>.json` in `splitsDir` (e.g. models/splits, declared for data sets that ship none) comes before
 * one that lies with the data.
 */
export async function findCategories(root: string, splitsDir?: string): Promise<SuiteCategory[]> {
  const found: string[] = [];
  if (await isCategory(root)) found.push(root);
  else {
    const below = async (dir: string) => (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => path.join(dir, d.name)).sort();
    for (const a of await below(root)) {
      if (await isCategory(a)) found.push(a);
      else for (const b of await below(a)) if (await isCategory(b)) found.push(b);
    }
  }
  const names = found.map((d) => path.basename(d));
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) throw new Error(`categories named alike under ${root} (${[...new Set(twice)].join(', ')}): their bundles could not be told apart`);
  const out: SuiteCategory[] = [];
  for (const data of found) {
    const candidates = [
      ...(splitsDir ? [path.join(splitsDir, `${path.basename(data)}.json`)] : []),
      path.join(data, 'split_test.json'),
      path.join(path.dirname(data), 'split_test.json'),
    ];
    let file: string | undefined;
    for (const c of candidates) if (!file && (await isFile(c))) file = c;
    out.push({ name: path.basename(data), data, ...(file ? { splitFile: file } : {}) });
  }
  return out;
}

export interface SuiteRow {
  category: string;
  model: string;
  /** 'validation' | 'test' of a declared split, or 'whole' (no split for this category, or none asked). */
  part: string;
  metrics: GroupMetrics;
}

const COLUMNS: [string, keyof GroupMetrics][] = [
  ['image AUROC', 'imageAUROC'], ['pixel AUROC', 'pixelAUROC'], ['AUPRO', 'pixelAUPRO'], ['F1 @ threshold', 'imageF1'], ['F1-max', 'imageF1Max'],
  ['pixel F1 @ threshold', 'pixelF1'], ['pixel F1-max', 'pixelF1Max'],
];

/** Unweighted mean over the categories of each figure (a category where a figure is undefined leaves it out). */
export function suiteMean(rows: SuiteRow[]): Record<keyof GroupMetrics, number> & { categories: number } {
  const mean = (k: keyof GroupMetrics) => {
    const v = rows.map((r) => r.metrics[k]).filter(Number.isFinite);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
  };
  return { ...(Object.fromEntries((['images', ...COLUMNS.map(([, k]) => k)] as (keyof GroupMetrics)[]).map((k) => [k, mean(k)])) as Record<keyof GroupMetrics, number>), categories: rows.length };
}

/** The suite's table in Markdown: one row per category and their mean. */
export function suiteSummary(root: string, rows: SuiteRow[]): string {
  const m = suiteMean(rows);
  const line = (c: string, model: string, part: string, images: string, g: Record<string, number>) =>
    `| ${c} | ${model} | ${part} | ${images} | ${COLUMNS.map(([, k]) => fmt(g[k])).join(' | ')} |`;
  return [
    `# Evaluation of a suite: ${rows.length} categories under \`${root}\``,
    '',
    `| category | model | part | images | ${COLUMNS.map(([h]) => h).join(' | ')} |`,
    `|---|---|---|---|${COLUMNS.map(() => '---|').join('')}`,
    ...rows.map((r) => line(r.category, r.model, r.part, String(r.metrics.images), r.metrics as unknown as Record<string, number>)),
    line('**mean**', '', '', '', m as unknown as Record<string, number>),
    '',
    'The mean is unweighted: each category counts once, whatever its number of images. Each category\'s own summary.md has its per-defect table.',
  ].join('\n');
}
