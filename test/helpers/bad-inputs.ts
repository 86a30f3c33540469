import sharp from 'sharp';
import { multipart, texture } from './images.js';

/** CRC-32 (PNG chunks), so a header can be rewritten into a still well-formed PNG. */
function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A tiny PNG whose header declares width x height: a decompression bomb. */
export async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer());
  // IHDR data starts at byte 16 (8 signature + 4 length + 4 type); its CRC covers type + data.
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

export interface Case {
  name: string;
  request: () => Promise<{ url?: string; payload: unknown; headers?: Record<string, string> }>;
  status: number;
  code?: string;
  check?: (body: any) => string | undefined;
}

const one = (data: Buffer, type = 'image/png', field = 'image') => multipart([{ data, type, field }]);
const json = (body: unknown) => ({ payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const create = (w: number, h: number, channels: 3 | 4 = 3, background: any = '#7a5c3e') => sharp({ create: { width: w, height: h, channels, background } });

/** The bad-input corpus: each case with its documented status and code (README: errors). */
export async function corpus(limits: { maxImageBytes: number; maxBodyBytes: number; maxFiles: number }): Promise<Case[]> {
  const png = await texture(64, 48, 'png');
  const jpg = await texture(64, 48, 'jpeg');
  const damaged = Buffer.from(png);
  for (let i = 60; i < damaged.length - 20; i += 7) damaged[i] ^= 0xff;
  const frames = Buffer.concat([Buffer.alloc(16 * 16 * 3, 200), Buffer.alloc(16 * 16 * 3, 20)]);
  const animated = (fmt: 'gif' | 'webp') => sharp(frames, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } as never }).toFormat(fmt, { loop: 0 } as never).toBuffer();
  return [
    { name: 'zero bytes', request: async () => one(Buffer.alloc(0)), status: 400, code: 'EMPTY_IMAGE' },
    { name: 'empty base64 string', request: async () => json({ images: [''] }), status: 400, code: 'EMPTY_IMAGE' },
    { name: 'truncated PNG', request: async () => one(png.subarray(0, png.length >> 1)), status: 422, code: 'CORRUPT_IMAGE' },
    { name: 'truncated JPEG', request: async () => one(jpg.subarray(0, jpg.length >> 1), 'image/jpeg'), status: 422, code: 'CORRUPT_IMAGE' },
    { name: 'PNG with damaged data', request: async () => one(damaged), status: 422, code: 'CORRUPT_IMAGE' },
    { name: 'text sent as an image', request: async () => one(Buffer.from('hello, I am not a picture\n'), 'image/png'), status: 415, code: 'NOT_AN_IMAGE' },
    { name: 'HTML sent as an image', request: async () => one(Buffer.from('<!doctype html><title>x</title>'), 'image/jpeg'), status: 415, code: 'NOT_AN_IMAGE' },
    { name: 'random bytes', request: async () => one(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251))), status: 415, code: 'NOT_AN_IMAGE' },
    { name: 'SVG', request: async () => one(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'), 'image/svg+xml'), status: 415, code: 'UNSUPPORTED_IMAGE_TYPE' },
    { name: 'AVIF (HEIF family)', request: async () => one(await create(16, 16).avif().toBuffer(), 'image/avif'), status: 415, code: 'UNSUPPORTED_IMAGE_TYPE' },
    { name: 'PNG sent with a wrong content type', request: async () => one(png, 'text/plain'), status: 200 },
    { name: 'decompression bomb (PNG declaring 50000x50000)', request: async () => one(await pngDeclaring(50000, 50000)), status: 413, code: 'TOO_MANY_PIXELS' },
    { name: '1x1 image', request: async () => one(await create(1, 1).png().toBuffer()), status: 200 },
    { name: 'extreme aspect ratio 4000x3', request: async () => one(await create(4000, 3).png().toBuffer()), status: 200, check: (b) => (b.results[0].width === 4000 ? undefined : 'width') },
    { name: 'CMYK JPEG', request: async () => one(await create(32, 32).toColourspace('cmyk').jpeg().toBuffer(), 'image/jpeg'), status: 200 },
    { name: '16-bit PNG', request: async () => one(await create(32, 32).toColourspace('rgb16').png().toBuffer()), status: 200 },
    { name: 'palette PNG with alpha', request: async () => one(await create(32, 32, 4, { r: 10, g: 200, b: 30, alpha: 0.5 }).png({ palette: true }).toBuffer()), status: 200 },
    { name: 'grey PNG with alpha', request: async () => one(await create(32, 32, 4, { r: 90, g: 90, b: 90, alpha: 0.3 }).toColourspace('b-w').png().toBuffer()), status: 200 },
    { name: 'animated GIF', request: async () => one(await animated('gif'), 'image/gif'), status: 200, check: (b) => (b.results[0].height === 16 ? undefined : 'first frame only') },
    { name: 'animated WebP', request: async () => one(await animated('webp'), 'image/webp'), status: 200, check: (b) => (b.results[0].height === 16 ? undefined : 'first frame only') },
    { name: 'TIFF', request: async () => one(await create(20, 10).tiff().toBuffer(), 'image/tiff'), status: 200 },
    { name: 'EXIF-rotated JPEG', request: async () => one(await create(40, 20).jpeg().withMetadata({ orientation: 8 }).toBuffer(), 'image/jpeg'), status: 200, check: (b) => (b.results[0].width === 20 && b.results[0].height === 40 ? undefined : 'not upright') },
    { name: 'wrong multipart field', request: async () => one(png, 'image/png', 'file'), status: 400, code: 'UNEXPECTED_FIELD' },
    { name: 'too many files', request: async () => multipart(Array.from({ length: limits.maxFiles + 1 }, () => ({ data: png }))), status: 413, code: 'TOO_MANY_FILES' },
    { name: 'image over MAX_IMAGE_BYTES', request: async () => one(Buffer.alloc(limits.maxImageBytes + 1, 7)), status: 413, code: 'TOO_MANY_BYTES' },
    { name: 'JSON body over MAX_BODY_BYTES', request: async () => json({ images: ['A'.repeat(limits.maxBodyBytes)] }), status: 413, code: 'TOO_MANY_BYTES' },
    { name: 'invalid base64', request: async () => json({ images: ['***not-base64***'] }), status: 400, code: 'INVALID_BASE64' },
    { name: 'base64 of impossible length', request: async () => json({ images: ['QUJDR'] }), status: 400, code: 'INVALID_BASE64' },
    { name: 'images is not an array', request: async () => json({ images: 'QUJD' }), status: 400, code: 'INVALID_REQUEST' },
    { name: 'images holds a number', request: async () => json({ images: [42] }), status: 400, code: 'INVALID_REQUEST' },
    { name: 'unknown model', request: async () => ({ url: '/detect?model=nosuchmodel', ...one(png) }), status: 404, code: 'UNKNOWN_MODEL' },
    { name: 'path traversal in the model name', request: async () => ({ url: '/detect?model=..%2F..%2Fetc%2Fpasswd', ...one(png) }), status: 400, code: 'INVALID_REQUEST' },
    { name: 'request body neither multipart nor JSON', request: async () => ({ payload: png, headers: { 'content-type': 'application/octet-stream' } }), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'multipart without a boundary', request: async () => ({ payload: 'x', headers: { 'content-type': 'multipart/form-data' } }), status: 400, code: 'INVALID_REQUEST' },
    { name: 'multipart body cut short', request: async () => { const m = one(png); return { ...m, payload: m.payload.subarray(0, m.payload.length - 200) }; }, status: 400, code: 'INVALID_REQUEST' },
    { name: 'sensitivity out of range', request: async () => ({ url: '/detect?sensitivity=2', ...one(png) }), status: 400, code: 'INVALID_REQUEST' },
    { name: 'threshold not a number', request: async () => ({ url: '/detect?threshold=high', ...one(png) }), status: 400, code: 'INVALID_REQUEST' },
  ];
}
