import sharp, { type Sharp } from 'sharp';
import type { DecodedImage } from '../image/decode.js';
import type { MapPlacement } from '../image/preprocess.js';

/**
 * zlib level 3 instead of libvips' 6: on a real heatmap (mtd-mnv2, an MTD blowhole, 248 x 373) 3.3 against 5.9 CPU-ms
 * for 4 % more bytes (53.7 against 51.4 kB); level 1 was 2.4 ms but 50 % larger. The pixels are the same.
 */
const PNG = { compressionLevel: 3 } as const;

interface Raw {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/**
 * A model-resolution raster at the original image's size: its window of the image (all of it but a letterbox's
 * mirrored borders) scaled onto the part of the image the model saw (outside: transparent/black).
 */
function onOriginal(src: Raw, width: number, height: number, { from, to: at }: MapPlacement, kernel: 'linear' | 'nearest'): Sharp {
  let img = sharp(Buffer.from(src.data.buffer, src.data.byteOffset, src.data.byteLength), {
    raw: { width: src.width, height: src.height, channels: src.channels },
  });
  if (from.width !== src.width || from.height !== src.height) img = img.extract(from);
  img = img.resize(at.width, at.height, { fit: 'fill', kernel });
  if (at.left === 0 && at.top === 0 && at.width === width && at.height === height) return img;
  return img.extend({
    left: at.left,
    top: at.top,
    right: width - at.left - at.width,
    bottom: height - at.top - at.height,
    background: { r: 0, g: 0, b: 0, alpha: 0 },
  });
}

/** Colour-mapped anomaly map at width x height (the original image's size, or smaller), `at` placed in it. */
export function heatmapPng(rgb: Uint8Array, mapW: number, mapH: number, width: number, height: number, at: MapPlacement): Promise<Buffer> {
  return onOriginal({ data: rgb, width: mapW, height: mapH, channels: 3 }, width, height, at, 'linear').png(PNG).toBuffer();
}

/** The heatmap blended over the upright original image, at `size` (the image's own, or smaller: outputSize). */
export async function overlayPng(image: DecodedImage, rgb: Uint8Array, mapW: number, mapH: number, at: MapPlacement, size: { width: number; height: number }, opacity = 0.5): Promise<Buffer> {
  const heat = await onOriginal({ data: rgb, width: mapW, height: mapH, channels: 3 }, size.width, size.height, at, 'linear')
    .ensureAlpha(opacity)
    .raw()
    .toBuffer();
  let base = image.pipeline().removeAlpha();
  if (size.width !== image.width || size.height !== image.height) base = base.resize(size.width, size.height, { fit: 'fill' });
  return base
    .composite([{ input: heat, raw: { width: size.width, height: size.height, channels: 4 } }])
    .png(PNG)
    .toBuffer();
}

/** A one-channel raster at width x height, like heatmapPng: a binary mask (nearest) or a grey map (linear). */
export function greyPng(grey: Uint8Array, mapW: number, mapH: number, width: number, height: number, at: MapPlacement, kernel: 'linear' | 'nearest'): Promise<Buffer> {
  return onOriginal({ data: grey, width: mapW, height: mapH, channels: 1 }, width, height, at, kernel)
    .toColourspace('b-w')
    .png(PNG)
    .toBuffer();
}

/** A colour-mapped map as PNG at its own resolution. */
export function mapPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png(PNG).toBuffer();
}
