import type { FitEnum, Sharp } from 'sharp';
import type { DecodedImage } from './decode.js';
import { scaledSize, type TileSpec } from '../maps/tiles.js';
import { imageError } from './errors.js';

export type Fit = 'stretch' | 'center-crop' | 'letterbox' | 'tile';

export interface InputSpec {
  width: number;
  height: number;
  channelOrder: 'RGB' | 'BGR';
  scaling: { scale: number; mean: number[]; std: number[] };
  fit: Fit;
  /** With fit tile: the inspection scale, overlap and blend (src/maps/tiles.ts). */
  tile?: TileSpec;
  /** Per-image exposure normalisation: pixels remapped to this mean and std (0..255) before scaling. */
  normalizeIntensity?: { mean: number; std: number };
}

/** A window: pixels of the original image or of the model's input, as each use says. */
export interface Placement {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The window of the original image that the model sees. stretch and letterbox: all of it. center-crop: the
 * largest centred window with the input's aspect ratio (what sharp's fit 'cover', position 'centre' keeps).
 */
export function placement(width: number, height: number, input: Pick<InputSpec, 'width' | 'height' | 'fit'>): Placement {
  if (input.fit !== 'center-crop') return { left: 0, top: 0, width, height };
  const scale = Math.max(input.width / width, input.height / height);
  const cw = Math.min(width, Math.round(input.width / scale));
  const ch = Math.min(height, Math.round(input.height / scale));
  return { left: Math.floor((width - cw) / 2), top: Math.floor((height - ch) / 2), width: cw, height: ch };
}

/**
 * letterbox: where the whole image lies in the model's input, in input pixels: the largest centred window with
 * the image's aspect ratio. The rest of the input is mirrored from the image.
 */
export function letterboxWindow(width: number, height: number, input: Pick<InputSpec, 'width' | 'height'>): Placement {
  const scale = Math.min(input.width / width, input.height / height);
  const cw = Math.max(1, Math.min(input.width, Math.round(width * scale)));
  const ch = Math.max(1, Math.min(input.height, Math.round(height * scale)));
  return { left: Math.floor((input.width - cw) / 2), top: Math.floor((input.height - ch) / 2), width: cw, height: ch };
}

/**
 * How a map at the model's input resolution lands on the original image: its window `from` (input pixels) is
 * resized onto the window `to` (original pixels). Only the pixels of `from` show the image itself.
 */
export interface MapPlacement {
  from: Placement;
  to: Placement;
}

/** The size of the PNGs for an image of width x height: scaled down (never up) so that its longest side is at most maxSide. */
export function outputSize(width: number, height: number, maxSide = Infinity): { width: number; height: number } {
  const s = Math.min(1, maxSide / Math.max(width, height));
  return s === 1 ? { width, height } : { width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) };
}

/** `at` with its target window taken from an image of `from` size to one of `to` size (edges rounded, at least a pixel). */
export function scalePlacement(at: MapPlacement, from: { width: number; height: number }, to: { width: number; height: number }): MapPlacement {
  if (from.width === to.width && from.height === to.height) return at;
  const sx = to.width / from.width, sy = to.height / from.height;
  const left = Math.min(to.width - 1, Math.round(at.to.left * sx)), top = Math.min(to.height - 1, Math.round(at.to.top * sy));
  const right = Math.min(to.width, Math.max(left + 1, Math.round((at.to.left + at.to.width) * sx)));
  const bottom = Math.min(to.height, Math.max(top + 1, Math.round((at.to.top + at.to.height) * sy)));
  return { from: at.from, to: { left, top, width: right - left, height: bottom - top } };
}

export function mapPlacement(width: number, height: number, input: Pick<InputSpec, 'width' | 'height' | 'fit'>): MapPlacement {
  if (input.fit === 'letterbox') return { from: letterboxWindow(width, height, input), to: { left: 0, top: 0, width, height } };
  return { from: { left: 0, top: 0, width: input.width, height: input.height }, to: placement(width, height, input) };
}

/**
 * The input's fit as sharp operations on `img`, an image of width x height (or its mask, with kernel 'nearest').
 * letterbox mirrors rather than pads flat: a flat band would be a texture the student never sees on a part, and
 * it would shift the per-image intensity statistics by the share of the input it takes.
 */
export function fitToInput(img: Sharp, width: number, height: number, input: Pick<InputSpec, 'width' | 'height' | 'fit'>, kernel: 'lanczos3' | 'nearest' = 'lanczos3'): Sharp {
  if (input.fit === 'letterbox') {
    const w = letterboxWindow(width, height, input);
    return img
      .resize(w.width, w.height, { fit: 'fill', kernel })
      .extend({ left: w.left, top: w.top, right: input.width - w.left - w.width, bottom: input.height - w.top - w.height, extendWith: 'mirror' });
  }
  const fit: keyof FitEnum = input.fit === 'stretch' ? 'fill' : 'cover';
  return img.resize(input.width, input.height, { fit, position: 'centre', kernel });
}

/** Resizes to the model's input: 8-bit RGB, interleaved (HWC), width x height x 3 bytes. */
export async function resizeForModel(image: DecodedImage, input: InputSpec, index = 0): Promise<Buffer> {
  try {
    return await fitToInput(image.pipeline(), image.width, image.height, input).removeAlpha().raw().toBuffer();
  } catch (err) {
    throw imageError(err, index);
  }
}

/** fit tile: the image at the inspection scale (`scaled`), and its pixels mirror-extended to at least one tile a side. */
export interface TiledImage {
  rgb: Buffer;
  /** Size of `rgb`: at least the tile's on each side. */
  width: number;
  height: number;
  /** The image's own size at the inspection scale (the top-left part of `rgb`): the blended map's size. */
  scaled: { width: number; height: number };
}

/**
 * The image resized by tile.scale with the kernel the other fits use (the pipeline's), then mirror-extended where a
 * side is shorter than a tile, as letterbox extends: a flat band would be a texture the student never saw.
 */
export async function resizeForTiles(image: DecodedImage, input: InputSpec, index = 0): Promise<TiledImage> {
  const scaled = scaledSize(image.width, image.height, input.tile!.scale);
  const width = Math.max(scaled.width, input.width), height = Math.max(scaled.height, input.height);
  try {
    let img = image.pipeline();
    if (scaled.width !== image.width || scaled.height !== image.height) img = img.resize(scaled.width, scaled.height, { fit: 'fill', kernel: 'lanczos3' });
    if (width > scaled.width || height > scaled.height) {
      img = img.extend({ right: width - scaled.width, bottom: height - scaled.height, extendWith: 'mirror' });
    }
    return { rgb: await img.removeAlpha().raw().toBuffer(), width, height, scaled };
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
