import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { routeSchema } from '../openapi.js';

/** Liveness, readiness and Prometheus metrics: cheap, and never behind inference (which runs in workers). */
export default async function opsRoutes(app: FastifyInstance, { config }: { config: Config }) {
  app.get('/healthz', { schema: routeSchema('healthz'), config: { shed: false } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: routeSchema('readyz'), config: { shed: false } }, async (_request, reply) => {
    const models = app.registry.list().map((s) => {
      if (s.state === 'ready') {
        const st = s.engine.status;
        return {
          name: s.name, state: s.state, version: s.engine.manifest.version, provider: st.provider, warmupMs: Math.round(st.warmupMs * 10) / 10, fallbacks: st.fallbacks,
          maxBatch: st.maxBatch,
          batchTimings: st.batchTimings.map((b) => ({ batch: b.batch, msPerImage: Math.round(b.msPerImage * 100) / 100 })),
        };
      }
      return s.state === 'failed' ? { name: s.name, state: s.state, error: s.error } : { name: s.name, state: s.state };
    });
    const threadPoolSize = config.UV_THREADPOOL_SIZE;
    if (app.isDraining()) return reply.code(503).send({ status: 'draining', models, threadPoolSize });
    const ready = models.length > 0 && models.every((m) => m.state === 'ready');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', models, threadPoolSize });
  });

  app.get('/metrics', { schema: routeSchema('metrics'), config: { shed: false } }, async (_request, reply) => {
    const reg = app.metrics.registry;
    return reply.type(reg.contentType).send(await reg.metrics());
  });
}
