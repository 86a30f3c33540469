import path from 'node:path';
import type { Report } from './evaluate.js';
import type { SplitInfo } from './split.js';

export const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** Which images were scored, in words: a part of a declared split, or the whole test split. */
export function partText(split: SplitInfo | undefined): string {
  if (!split) return 'the whole test split';
  const what = split.part === 'validation' ? 'the images it lists, set aside for choices' : 'every test image it does not list; it decided nothing';
  return `the **${split.part} part** of \`${path.basename(split.file)}\` (sha256 ${split.sha256.slice(0, 16)}…: ${what})`;
}

/** summary.md of one category's evaluation. */
export function summary(r: Report & { split?: SplitInfo }): string {
  const rows = [['all', r], ...Object.entries(r.perDefect)] as [string, Report['perDefect'][string]][];
  return [
    `# Evaluation of ${r.model.name} ${r.model.version}`,
    '',
    `Data: \`${r.data}\`, ${r.images} images: ${partText(r.split)}. Calibrated image threshold ${r.threshold.toFixed(4)}.`,
    `Scored by the service's own engine (npm run eval), ${(r.secondsPerImage * 1000).toFixed(1)} ms per image end to end on this machine; maps and masks at ${r.mapsAt}.`,
    '',
    '| defect | images | image AUROC | pixel AUROC | AUPRO (FPR ≤ 0.3) | image F1 @ threshold | image F1-max | pixel F1 @ threshold | pixel F1-max |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(([d, g]) => `| ${d} | ${g.images} | ${fmt(g.imageAUROC)} | ${fmt(g.pixelAUROC)} | ${fmt(g.pixelAUPRO)} | ${fmt(g.imageF1)} | ${fmt(g.imageF1Max)} | ${fmt(g.pixelF1)} | ${fmt(g.pixelF1Max)} |`),
    '',
    'Per defect: that defect\'s images against all good test images. Pixel F1: defect pixels positive, at the bundle\'s pixel threshold (the one masks and regions use).',
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
