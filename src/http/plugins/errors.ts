import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { STATUS_CODES } from 'node:http';
import { ApiError, isApiError } from '../errors.js';

/** Framework and plugin error codes that are the client's doing, mapped to the API's stable codes. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'TOO_MANY_BYTES'],
  FST_REQ_FILE_TOO_LARGE: [413, 'TOO_MANY_BYTES'],
  FST_FILES_LIMIT: [413, 'TOO_MANY_FILES'],
  FST_PARTS_LIMIT: [413, 'TOO_MANY_FILES'],
  FST_FIELDS_LIMIT: [413, 'TOO_MANY_FILES'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_REQUEST'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_REQUEST'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_REQUEST'],
  FST_PROTO_VIOLATION: [400, 'INVALID_REQUEST'],
};

export function errorBody(statusCode: number, code: string, message: string) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message };
}

/** One error shape for every failure; internals never leak on 5xx. */
export default fp(async function errors(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    if (isApiError(err)) {
      return reply.code(err.statusCode).headers(err.headers).send(errorBody(err.statusCode, err.code, err.message));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      return reply.code(400).send(errorBody(400, 'INVALID_REQUEST', `invalid request: ${fe.message}`));
    }
    const mapped = fe.code ? CLIENT_ERRORS[fe.code] : undefined;
    if (mapped) return reply.code(mapped[0]).send(errorBody(mapped[0], mapped[1], fe.message));
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send(errorBody(fe.statusCode, 'INVALID_REQUEST', fe.message));
    }
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send(errorBody(500, 'INTERNAL', 'internal error; see the server log'));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
});
