import sharp, { type Sharp } from 'sharp';
import type { DecodedImage } from '../image/decode.js';
import type { Placement } from '../image/preprocess.js';

interface Raw {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** A model-resolution raster, scaled onto the model's window of the original image (outside: transparent/black). */
function onOriginal(src: Raw, width: number, height: number, at: Placement, kernel: 'linear' | 'nearest'): Sharp {
  const img = sharp(Buffer.from(src.data.buffer, src.data.byteOffset, src.data.byteLength), {
    raw: { width: src.width, height: src.height, channels: src.channels },
  }).resize(at.width, at.height, { fit: 'fill', kernel });
  if (at.left === 0 && at.top === 0 && at.width === width && at.height === height) return img;
  return img.extend({
    left: at.left,
    top: at.top,
    right: width - at.left - at.width,
    bottom: height - at.top - at.height,
    background: { r: 0, g: 0, b: 0, alpha: 0 },
  });
}

/** Colour-mapped anomaly map at the original image size. */
export function heatmapPng(rgb: Uint8Array, mapW: number, mapH: number, width: number, height: number, at: Placement): Promise<Buffer> {
  return onOriginal({ data: rgb, width: mapW, height: mapH, channels: 3 }, width, height, at, 'linear').png().toBuffer();
}

/** The heatmap blended over the upright original image. */
export async function overlayPng(image: DecodedImage, rgb: Uint8Array, mapW: number, mapH: number, at: Placement, opacity = 0.5): Promise<Buffer> {
  const heat = await onOriginal({ data: rgb, width: mapW, height: mapH, channels: 3 }, image.width, image.height, at, 'linear')
    .ensureAlpha(opacity)
    .raw()
    .toBuffer();
  return image.pipeline
    .clone()
    .removeAlpha()
    .composite([{ input: heat, raw: { width: image.width, height: image.height, channels: 4 } }])
    .png()
    .toBuffer();
}

/** A one-channel raster at the original image size: a binary mask (nearest) or a grey map (linear). */
export function greyPng(grey: Uint8Array, mapW: number, mapH: number, width: number, height: number, at: Placement, kernel: 'linear' | 'nearest'): Promise<Buffer> {
  return onOriginal({ data: grey, width: mapW, height: mapH, channels: 1 }, width, height, at, kernel)
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** A colour-mapped map as PNG at its own resolution. */
export function mapPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
}
