/**
 * The host path's stages one at a time, in this process, one image after another: CPU time per image of each
 * (process.cpuUsage covers sharp's threads and ONNX Runtime's too), so that the server's CPU per image against the
 * probe bundle can be split into where it goes. Nothing runs concurrently here, so nothing else is counted.
 */
import ort from 'onnxruntime-node';
import type { Bundle } from '../bundle/load.js';
import { colorize } from '../detect/colormap.js';
import { heatmapPng } from '../detect/encode.js';
import { normalizeMap } from '../detect/scoring.js';
import { composeBundle } from '../graph/compose.js';
import { OUTPUT_MAP } from '../graph/head.js';
import { PIXELS_INPUT } from '../graph/preprocess.js';
import { decodeImage } from '../image/decode.js';
import { mapPlacement, resizeForModel } from '../image/preprocess.js';

async function cpuMsPerRun(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < Math.min(10, runs); i++) await fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < runs; i++) await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / runs;
}

export interface HostStages {
  /** Header read and checks (decodeImage). */
  decodeMs: number;
  /** Decode of the pixels and resize to the model's input (resizeForModel). */
  resizeMs: number;
  /** The probe bundle's session.run at batch 1, one intra-op thread: in-graph preprocessing and head. */
  probeSessionMs: number;
  /** normalizeMap + colorize of the model-resolution map. */
  heatmapColourMs: number;
  /** Resize to the original size and PNG encoding (heatmapPng). */
  heatmapPngMs: number;
}

/** `probe` is the host-probe bundle (src/bench/host-probe.ts) of the model being measured. */
export async function measureHostStages(bytes: Buffer, probe: Bundle, runs = 200): Promise<HostStages> {
  const m = probe.manifest;
  const limits = { maxPixels: Number.MAX_SAFE_INTEGER };
  const image = await decodeImage(bytes, limits);
  const decodeMs = await cpuMsPerRun(runs, () => decodeImage(bytes, limits));
  const resizeMs = await cpuMsPerRun(runs, async () => resizeForModel(await decodeImage(bytes, limits), m.input)) - decodeMs;
  const pixels = await resizeForModel(image, m.input);
  const session = await ort.InferenceSession.create(composeBundle(probe), { executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = { [PIXELS_INPUT]: new ort.Tensor('uint8', new Uint8Array(pixels), [1, m.input.height, m.input.width, 3]) };
  const probeSessionMs = await cpuMsPerRun(runs, () => session.run(feeds));
  const map = (await session.run(feeds))[OUTPUT_MAP].data as Float32Array;
  await session.release();
  const cal = m.calibration.pixel;
  const heatmapColourMs = await cpuMsPerRun(runs, () => colorize(normalizeMap(map, cal)));
  const rgb = colorize(normalizeMap(map, cal));
  const at = mapPlacement(image.width, image.height, m.input);
  const heatmapPngMs = await cpuMsPerRun(runs, () => heatmapPng(rgb, m.input.width, m.input.height, image.width, image.height, at));
  return { decodeMs, resizeMs, probeSessionMs, heatmapColourMs, heatmapPngMs };
}
