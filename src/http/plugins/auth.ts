import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.js';
import { ApiError } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** true for routes that need an API key when API_KEYS is set. */
    auth?: boolean;
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when `presented` equals one of the keys; every key is compared, in constant time, whatever matches. */
export function keyMatches(presented: string, keyDigests: Buffer[]): boolean {
  const d = digest(presented);
  let ok = false;
  for (const k of keyDigests) ok = timingSafeEqual(d, k) || ok;
  return ok;
}

/**
 * Optional API keys (API_KEYS, comma-separated): routes marked `auth` need `Authorization: Bearer <key>`.
 * Health, readiness, metrics, the docs and the page's static files stay open for operators and probes.
 */
export default fp(async function auth(app: FastifyInstance, opts: { config: Config }) {
  const keys = opts.config.API_KEYS.map(digest);
  if (keys.length === 0) return;
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.auth !== true) return;
    const header = request.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m || !keyMatches(m[1], keys)) {
      throw new ApiError(401, 'UNAUTHORIZED', m ? 'the API key is not valid' : 'an API key is required: Authorization: Bearer <key>', { 'www-authenticate': 'Bearer' });
    }
  });
});
