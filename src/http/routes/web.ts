import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { fromRoot } from '../../paths.js';
import { routeSchema } from '../openapi.js';

/** The try-it page: static files, no build step; it talks to the public API only. */
export default async function webRoutes(app: FastifyInstance) {
  await app.register(fastifyStatic, { root: fromRoot('src', 'web'), prefix: '/ui/', index: false, cacheControl: true, maxAge: '1h' });
  app.get('/', { schema: routeSchema('page') }, (_request, reply) => reply.type('text/html; charset=utf-8').sendFile('index.html', { maxAge: 0 }));
}
