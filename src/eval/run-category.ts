import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Bundle } from '../bundle/load.js';
import type { Config } from '../config.js';
import { ModelEngine } from '../engine/model-engine.js';
import { decodeImage } from '../image/decode.js';
import { resizeForModel } from '../image/preprocess.js';
import { scaledSize } from '../maps/tiles.js';
import { testSamples } from './dataset.js';
import { computeReport, PathMetrics, scoreAll, type Report } from './evaluate.js';
import { histogramSpec, proSpec, renderPng, rocSpec, sampleGrid } from './plots.js';
import { selectPart, type Part, type SplitInfo, type TestSplit } from './split.js';
import { summary } from './summary.js';

export type CategoryReport = Report & { split?: SplitInfo };

/**
 * Scores one category's test images (all, or one part of a declared split) through the service's own engine
 * and writes report.json, summary.md and the plots to `out`. The edge of the evaluation: engine, files.
 */
export async function evaluateCategory(opts: {
  bundle: Bundle;
  data: string;
  split?: TestSplit;
  part?: Part;
  out: string;
  config: Config;
}): Promise<{ report: CategoryReport; md: string; files: string[] }> {
  const { bundle, data, split, part, out, config } = opts;
  const splitInfo: SplitInfo | undefined = split && { file: path.resolve(split.file), sha256: split.sha256, part: part!, ...(split.rule ? { rule: split.rule } : {}), ...(split.seed !== undefined ? { seed: split.seed } : {}) };
  const all = await testSamples(data);
  const samples = split ? selectPart(all, split, part!) : all;
  const engine = await ModelEngine.create(bundle, {
    providers: config.EXECUTION_PROVIDERS,
    workers: config.WORKERS,
    intraOpThreads: config.INTRA_OP_THREADS,
    intraOpSpinning: config.INTRA_OP_SPINNING === 'on',
    maxBatch: config.MAX_BATCH,
    maxWaitMs: 5,
    maxQueue: 1 << 20,
  });
  console.error(`evaluating ${bundle.manifest.name} ${bundle.manifest.version} on ${samples.length} images of ${data} (${engine.status.provider})`);
  const t0 = performance.now();
  let last = 0;
  const perPath = new PathMetrics(bundle.manifest);
  let scores;
  try {
    scores = await scoreAll(engine, samples, (done) => {
      if (done === samples.length || performance.now() - last > 2000) {
        last = performance.now();
        process.stderr.write(`\r  scored ${done}/${samples.length} (${((100 * done) / samples.length).toFixed(0)} %)`);
      }
    }, 16, perPath);
  } finally {
    process.stderr.write('\n');
    await engine.close();
  }
  const report: CategoryReport = { ...computeReport(engine, path.resolve(data), scores, (performance.now() - t0) / 1000), perPath: perPath.report(), ...(splitInfo ? { split: splitInfo } : {}) };
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
  const input = bundle.manifest.input;
  const pixelsAtMap = async (file: string) => {
    const image = await decodeImage(await readFile(file), { maxPixels: 400_000_000 });
    if (input.fit !== 'tile') return resizeForModel(image, input);
    const size = scaledSize(image.width, image.height, input.tile!.scale);
    return image.pipeline().resize({ ...size, fit: 'fill', kernel: 'lanczos3' }).removeAlpha().raw().toBuffer();
  };
  plots.push(['samples.png', sampleGrid(rows, bundle.manifest, pixelsAtMap)]);
  for (const [name, png] of plots) await writeFile(path.join(out, name), await png);
  return { report, md, files: ['report.json', 'summary.md', ...plots.map(([n]) => n)] };
}
