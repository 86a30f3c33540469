import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.js';
import { errorBody } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false for routes that must answer even under pressure (health, readiness, metrics). */
    shed?: boolean;
  }
}

/**
 * Sheds load before it piles up: when the event loop lags or memory is past its limit, requests get
 * 503 OVERLOADED with Retry-After. Ops routes are never shed: an orchestrator must not kill a busy replica.
 * (The bounded inference queue sheds the other kind of overload, too many images waiting.)
 */
export default fp(async function loadShedding(app: FastifyInstance, opts: { config: Config }) {
  const c = opts.config;
  await app.register(underPressure, {
    maxEventLoopDelay: c.MAX_EVENT_LOOP_DELAY_MS,
    maxRssBytes: c.MAX_RSS_BYTES,
    sampleInterval: 100,
    pressureHandler: (request, reply, type, value) => {
      if (request.routeOptions.config.shed === false) return; // handled normally
      request.log.warn({ type, value }, 'shedding load');
      reply.code(503).header('retry-after', '1').send(errorBody(503, 'OVERLOADED', `the server is under pressure (${type}); retry shortly`));
    },
  });
});
