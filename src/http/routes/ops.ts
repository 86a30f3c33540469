import type { FastifyInstance } from 'fastify';
import { routeSchema } from '../openapi.js';

/** Liveness, readiness and Prometheus metrics: cheap, and never behind inference (which runs in workers). */
export default async function opsRoutes(app: FastifyInstance) {
  app.get('/healthz', { schema: routeSchema('healthz'), config: { shed: false } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: routeSchema('readyz'), config: { shed: false } }, async (_request, reply) => {
    const models = app.registry.list().map((s) => {
      if (s.state === 'ready') {
        const st = s.engine.status;
        return { name: s.name, state: s.state, version: s.engine.manifest.version, provider: st.provider, warmupMs: Math.round(st.warmupMs * 10) / 10, fallbacks: st.fallbacks };
      }
      return s.state === 'failed' ? { name: s.name, state: s.state, error: s.error } : { name: s.name, state: s.state };
    });
    if (app.isDraining()) return reply.code(503).send({ status: 'draining', models });
    const ready = models.length > 0 && models.every((m) => m.state === 'ready');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', models });
  });

  app.get('/metrics', { schema: routeSchema('metrics'), config: { shed: false } }, async (_request, reply) => {
    const reg = app.metrics.registry;
    return reply.type(reg.contentType).send(await reg.metrics());
  });
}
