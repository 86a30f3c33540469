import type { FitEnum } from 'sharp';
import type { DecodedImage } from './decode.js';
import { imageError } from './errors.js';

export type Fit = 'stretch' | 'center-crop';

export interface InputSpec {
  width: number;
  height: number;
  channelOrder: 'RGB' | 'BGR';
  scaling: { scale: number; mean: number[]; std: number[] };
  fit: Fit;
  /** Per-image exposure normalisation: pixels remapped to this mean and std (0..255) before scaling. */
  normalizeIntensity?: { mean: number; std: number };
}

/** Where the model's input window lies on the original image, in original pixels. */
export interface Placement {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The window of the original image that the model sees. stretch: all of it. center-crop: the largest
 * centred window with the input's aspect ratio (what sharp's fit 'cover', position 'centre' keeps).
 */
export function placement(width: number, height: number, input: Pick<InputSpec, 'width' | 'height' | 'fit'>): Placement {
  if (input.fit === 'stretch') return { left: 0, top: 0, width, height };
  const scale = Math.max(input.width / width, input.height / height);
  const cw = Math.min(width, Math.round(input.width / scale));
  const ch = Math.min(height, Math.round(input.height / scale));
  return { left: Math.floor((width - cw) / 2), top: Math.floor((height - ch) / 2), width: cw, height: ch };
}

/** Resizes to the model's input: 8-bit RGB, interleaved (HWC), width x height x 3 bytes. */
export async function resizeForModel(image: DecodedImage, input: InputSpec, index = 0): Promise<Buffer> {
  const fit: keyof FitEnum = input.fit === 'stretch' ? 'fill' : 'cover';
  try {
    return await image.pipeline
      .clone()
      .resize(input.width, input.height, { fit, position: 'centre' })
      .removeAlpha()
      .raw()
      .toBuffer();
  } catch (err) {
    throw imageError(err, index);
  }
}

/**
 * (gain, bias) that remap an image's pixels (all channels together) to the target mean and std:
 * p' = p * gain + bias. A flat image keeps its contrast (gain 1) and only moves to the target mean.
 */
export function intensityRemap(rgb: Uint8Array, target: { mean: number; std: number }): { gain: number; bias: number } {
  let sum = 0, sq = 0;
  for (let i = 0; i < rgb.length; i++) {
    sum += rgb[i];
    sq += rgb[i] * rgb[i];
  }
  const mean = sum / rgb.length;
  const std = Math.sqrt(Math.max(sq / rgb.length - mean * mean, 0));
  const gain = std > 1e-3 ? target.std / std : 1;
  return { gain, bias: target.mean - mean * gain };
}

/**
 * HWC uint8 RGB -> planar float32 (CHW) in the model's channel order and scaling:
 * x[c] = (p[c] * scale - mean[c]) / std[c], with p = pixel, or pixel * gain + bias under intensity
 * normalisation. Writes into `out` at `offset` so batches need no copy.
 */
export function toTensor(
  rgb: Uint8Array,
  width: number,
  height: number,
  scaling: InputSpec['scaling'],
  channelOrder: InputSpec['channelOrder'],
  out: Float32Array = new Float32Array(3 * width * height),
  offset = 0,
  normalizeIntensity?: InputSpec['normalizeIntensity'],
): Float32Array {
  const plane = width * height;
  if (rgb.length !== plane * 3) throw new RangeError(`expected ${plane * 3} bytes, got ${rgb.length}`);
  const { gain, bias } = normalizeIntensity ? intensityRemap(rgb, normalizeIntensity) : { gain: 1, bias: 0 };
  for (let c = 0; c < 3; c++) {
    const src = channelOrder === 'RGB' ? c : 2 - c;
    const mul = (gain * scaling.scale) / scaling.std[c];
    const add = (bias * scaling.scale - scaling.mean[c]) / scaling.std[c];
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = rgb[i * 3 + src] * mul + add;
  }
  return out;
}
