import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

export interface InputLimits {
  maxFiles: number;
  maxImageBytes: number;
}

const DATA_URL = /^data:[\w.+-]+\/[\w.+-]+;base64,/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Strict base64 (a data-URL prefix and missing padding are tolerated); anything else is refused, not guessed. */
export function decodeBase64(text: string, index: number, maxBytes: number): Buffer {
  const s = text.replace(DATA_URL, '').replace(/\s+/g, '');
  if (s.length === 0) throw new ApiError(400, 'EMPTY_IMAGE', `image ${index}: the base64 string is empty`);
  if (!BASE64.test(s) || s.length % 4 === 1) throw new ApiError(400, 'INVALID_BASE64', `image ${index}: not valid base64`);
  if (Math.floor((s.length * 3) / 4) > maxBytes + 2) {
    throw new ApiError(413, 'TOO_MANY_BYTES', `image ${index}: larger than ${maxBytes} bytes`);
  }
  return Buffer.from(s, 'base64');
}

async function readParts(request: FastifyRequest, limits: InputLimits, images: Buffer[]): Promise<void> {
  for await (const part of request.parts()) {
    if (part.type !== 'file') continue; // plain form fields carry nothing the API reads
    if (part.fieldname !== 'image') {
      part.file.resume();
      throw new ApiError(400, 'UNEXPECTED_FIELD', `unexpected file field "${part.fieldname}"; send images in field "image"`);
    }
    if (images.length >= limits.maxFiles) {
      part.file.resume();
      throw new ApiError(413, 'TOO_MANY_FILES', `at most ${limits.maxFiles} images per request`);
    }
    images.push(await part.toBuffer());
  }
}

/** Images of a /detect request, in order: multipart files in field `image`, or JSON {"images": [base64...]}. */
export async function readImages(request: FastifyRequest, limits: InputLimits): Promise<Buffer[]> {
  const images: Buffer[] = [];
  if (request.isMultipart()) {
    try {
      await readParts(request, limits, images);
    } catch (err) {
      // busboy's own errors (no boundary, a body cut short...) carry no status: they are the client's.
      if (err instanceof ApiError || (err as { statusCode?: number }).statusCode) throw err;
      throw new ApiError(400, 'INVALID_REQUEST', `malformed multipart body (${(err as Error).message})`);
    }
  } else {
    const body = request.body as { images?: string[] } | undefined;
    const list = body?.images ?? [];
    if (list.length > limits.maxFiles) throw new ApiError(413, 'TOO_MANY_FILES', `at most ${limits.maxFiles} images per request`);
    list.forEach((s, i) => images.push(decodeBase64(s, i, limits.maxImageBytes)));
  }
  if (images.length === 0) throw new ApiError(400, 'NO_IMAGE', 'no image in the request: send files in field "image" or JSON {"images": [...]}');
  return images;
}
