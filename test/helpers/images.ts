import sharp from 'sharp';
import { noise } from './fixtures.js';

/** A textured RGB image encoded as `format`. */
export async function texture(width: number, height: number, format: 'png' | 'jpeg' | 'webp' | 'tiff' | 'gif' = 'png', seed = 3): Promise<Buffer> {
  const px = Uint8Array.from(noise(width * height * 3, seed, 255));
  return sharp(Buffer.from(px), { raw: { width, height, channels: 3 } }).toFormat(format).toBuffer();
}

/** A multipart/form-data body with the given files. */
export function multipart(files: { field?: string; name?: string; type?: string; data: Buffer }[], boundary = 'mixdistillboundary') {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? 'image'}"; filename="${f.name ?? 'a.png'}"\r\nContent-Type: ${f.type ?? 'image/png'}\r\n\r\n`));
    parts.push(f.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
