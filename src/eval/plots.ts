import sharp, { type OverlayOptions } from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { colorize } from '../detect/colormap.js';
import { normalize } from '../detect/scoring.js';
import type { Manifest } from '../bundle/manifest.js';
import type { Scores } from './evaluate.js';

/** Vega-Lite spec -> PNG (Vega renders SVG headlessly, sharp rasterises it). */
export async function renderPng(spec: TopLevelSpec): Promise<Buffer> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG(2);
  view.finalize();
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 360, height: 300, background: 'white' } as const;

export function rocSpec(curves: { name: string; points: { fpr: number; tpr: number }[] }[]): TopLevelSpec {
  return {
    ...base,
    title: 'ROC curves',
    data: { values: curves.flatMap((c) => c.points.map((p) => ({ curve: c.name, fpr: p.fpr, tpr: p.tpr }))) },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'fpr', type: 'quantitative', title: 'false positive rate', scale: { domain: [0, 1] } },
      y: { field: 'tpr', type: 'quantitative', title: 'true positive rate', scale: { domain: [0, 1] } },
      color: { field: 'curve', type: 'nominal', title: null },
      order: { field: 'fpr', type: 'quantitative' },
    },
  } as TopLevelSpec;
}

export function proSpec(points: { fpr: number; pro: number }[], aupro: number): TopLevelSpec {
  return {
    ...base,
    title: `Per-region overlap (AUPRO up to FPR 0.3 = ${aupro.toFixed(3)})`,
    data: { values: points.filter((p) => p.fpr <= 0.3) },
    mark: 'line',
    encoding: {
      x: { field: 'fpr', type: 'quantitative', title: 'false positive rate (pixels)', scale: { domain: [0, 0.3] } },
      y: { field: 'pro', type: 'quantitative', title: 'per-region overlap', scale: { domain: [0, 1] } },
      order: { field: 'fpr', type: 'quantitative' },
    },
  } as TopLevelSpec;
}

export function histogramSpec(scores: { score: number; group: string }[], threshold: number): TopLevelSpec {
  return {
    ...base,
    width: 480,
    title: 'Image scores: good vs defective (rule: calibrated threshold)',
    layer: [
      {
        data: { values: scores },
        mark: { type: 'bar', opacity: 0.6, binSpacing: 0 },
        encoding: {
          x: { field: 'score', type: 'quantitative', bin: { maxbins: 60 }, title: 'image score' },
          y: { aggregate: 'count', type: 'quantitative', stack: null, title: 'images' },
          color: { field: 'group', type: 'nominal', title: null },
        },
      },
      { data: { values: [{ threshold }] }, mark: { type: 'rule', color: 'black', strokeDash: [4, 3] }, encoding: { x: { field: 'threshold', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

/** One row per sample: the image, its heatmap over it, and its mask; at the map's size (pixels gives the image at it). */
export async function sampleGrid(rows: { s: Scores; label: string }[], m: Manifest, pixels: (file: string) => Promise<Buffer>): Promise<Buffer> {
  const tile = 160, pad = 6, labelH = 18;
  const composites: OverlayOptions[] = [];
  for (const [r, { s, label }] of rows.entries()) {
    const W = s.width, H = s.map.length / s.width;
    const top = r * (tile + labelH + pad);
    const rgb = await pixels(s.sample.file);
    const scaled = Float32Array.from(s.map, (v) => normalize(v, m.calibration.pixel));
    const heat = Buffer.from(colorize(scaled));
    const img = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).resize(tile, tile).png().toBuffer();
    // sharp composites after resizing within one pipeline, so blend at full size first.
    const blended = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
      .composite([{ input: await sharp(heat, { raw: { width: W, height: H, channels: 3 } }).ensureAlpha(0.5).raw().toBuffer(), raw: { width: W, height: H, channels: 4 } }])
      .png()
      .toBuffer();
    const overlay = await sharp(blended).resize(tile, tile).png().toBuffer();
    const maskPx = Buffer.from(s.mask ? Uint8Array.from(s.mask, (v) => v * 255) : new Uint8Array(W * H));
    const mask = await sharp(maskPx, { raw: { width: W, height: H, channels: 1 } }).resize(tile, tile, { kernel: 'nearest' }).png().toBuffer();
    const text = `<svg width="${3 * tile + 2 * pad}" height="${labelH}"><text x="2" y="13" font-family="sans-serif" font-size="12">${label.replace(/[<&]/g, '')}</text></svg>`;
    composites.push({ input: Buffer.from(text), top, left: 0 });
    [img, overlay, mask].forEach((input, c) => composites.push({ input, top: top + labelH, left: c * (tile + pad) }));
  }
  return sharp({ create: { width: 3 * tile + 2 * pad, height: rows.length * (tile + labelH + pad), channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toBuffer();
}
