import { ApiError } from '../http/errors.js';

/** Turns sharp/libvips failures into the API's stable error codes: bad input is never a 500. */
export function imageError(err: unknown, index: number): ApiError {
  const msg = err instanceof Error ? err.message : String(err);
  const where = `image ${index}`;
  if (/pixel limit/i.test(msg)) {
    return new ApiError(413, 'TOO_MANY_PIXELS', `${where}: the image has more pixels than allowed`);
  }
  if (/unsupported image format/i.test(msg)) {
    return new ApiError(415, 'NOT_AN_IMAGE', `${where}: the data is not an image`);
  }
  return new ApiError(422, 'CORRUPT_IMAGE', `${where}: the image could not be decoded (${msg.split('\n')[0].slice(0, 160)})`);
}
