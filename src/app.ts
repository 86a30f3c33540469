import http from 'node:http';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import auth from './http/plugins/auth.js';
import errors from './http/plugins/errors.js';
import loadShedding from './http/plugins/load-shedding.js';
import metrics from './http/plugins/metrics.js';
import models from './http/plugins/models.js';
import { registerSharedSchemas, validatorCompiler } from './http/openapi.js';
import detectRoutes from './http/routes/detect.js';
import docsRoutes from './http/routes/docs.js';
import modelRoutes from './http/routes/models.js';
import opsRoutes from './http/routes/ops.js';
import webRoutes from './http/routes/web.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Starts draining before close: answers go on, /readyz turns 503, each answer closes its connection. */
    drain(): void;
    isDraining(): boolean;
  }
}

export interface AppOptions {
  config: Config;
  /** Fastify logger option; the server passes pino settings, tests usually false. */
  logger?: FastifyServerOptions['logger'];
}

/**
 * The whole service as a Fastify instance, not listening: the server calls listen(), tests use inject().
 * Registration order is the architecture: cross-cutting plugins, the model registry, then routes.
 */
export async function buildApp({ config, logger = false }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    bodyLimit: config.MAX_BODY_BYTES,
    // A body trickled in slower than this is cut off (408), so slow clients cannot hold sockets forever.
    // Node enforces it on a polling interval (30 s by default), so the interval is tightened too.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    serverFactory: (handler) =>
      http.createServer({ requestTimeout: config.REQUEST_TIMEOUT_MS, connectionsCheckingInterval: Math.min(1000, config.REQUEST_TIMEOUT_MS) }, handler),
  });
  registerSharedSchemas(app);
  app.setValidatorCompiler(validatorCompiler());

  // Graceful close: idle keep-alive sockets are closed at once (Fastify's default); a socket with a
  // request in flight gets "Connection: close" on its answer, so close() need not wait for the client's
  // keep-alive to lapse. Draining comes first where a balancer sits in front (SHUTDOWN_DRAIN_MS): the
  // service still answers everything, /readyz says 503, and every answer closes its connection, so that
  // keep-alive clients reconnect, through the balancer, to a replica that stays.
  let closing = false;
  app.decorate('drain', () => {
    closing = true;
  });
  app.decorate('isDraining', () => closing);
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  await app.register(errors);
  await app.register(metrics);
  await app.register(loadShedding, { config });
  await app.register(auth, { config });
  await app.register(multipart, {
    limits: { fileSize: config.MAX_IMAGE_BYTES, files: config.MAX_FILES + 1, parts: config.MAX_FILES + 16, fields: 16 },
  });
  await app.register(models, { config });

  await app.register(opsRoutes, { config });
  await app.register(modelRoutes, { config });
  await app.register(detectRoutes, { config });
  await app.register(docsRoutes);
  await app.register(webRoutes);
  return app;
}
