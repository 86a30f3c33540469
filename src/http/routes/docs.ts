import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { OPENAPI, OPENAPI_TEXT } from '../openapi.js';

/** The contract as a file (/openapi.yaml) and as a browsable UI (/docs), both from openapi.yaml. */
export default async function docsRoutes(app: FastifyInstance) {
  await app.register(swagger, { mode: 'static', specification: { document: structuredClone(OPENAPI) as never } });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
  app.get('/openapi.yaml', { schema: { hide: true } as never }, async (_request, reply) => reply.type('application/yaml').send(OPENAPI_TEXT));
}
