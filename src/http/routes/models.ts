import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Manifest } from '../../bundle/manifest.js';
import { listBundles } from '../../bundle/load.js';
import type { Config } from '../../config.js';
import type { ModelState } from '../../engine/registry.js';
import { ApiError } from '../errors.js';
import { routeSchema } from '../openapi.js';

async function publicParts(m: Manifest, dir: string) {
  const weights = new Map(m.fusion.paths.map((f) => [f.student, f.weight]));
  const card = m.card ? await readFile(path.join(dir, m.card), 'utf8').catch(() => undefined) : undefined;
  return {
    version: m.version,
    description: m.description,
    input: { width: m.input.width, height: m.input.height, fit: m.input.fit },
    paths: m.student.outputs.map((o) => ({
      name: o.name,
      kind: o.path === 'direct' ? ('layer-wise' as const) : ('cross-layer' as const),
      path: o.path,
      teacherLayer: o.imitates,
      studentLayer: o.layer,
      weight: weights.get(o.name) ?? 0,
    })),
    calibration: { method: m.calibration.method, imageThreshold: m.calibration.image.threshold, pixelThreshold: m.calibration.pixel.threshold },
    ...(card !== undefined ? { card } : {}),
  };
}

export default async function modelRoutes(app: FastifyInstance, opts: { config: Config }) {
  app.get('/models', { schema: routeSchema('listModels'), config: { auth: true } }, async () => ({
    defaultModel: opts.config.DEFAULT_MODEL,
    models: await Promise.all(
      app.registry.list().map(async (s) => {
        if (s.state === 'ready') {
          return { name: s.name, state: s.state, provider: s.engine.status.provider, loadedAt: s.loadedAt, ...(await publicParts(s.engine.manifest, s.engine.dir)) };
        }
        return s.state === 'failed' ? { name: s.name, state: s.state, error: s.error } : { name: s.name, state: s.state };
      }),
    ),
  }));

  app.get('/models/:name/card', { schema: routeSchema('modelCard'), config: { auth: true } }, async (request, reply) => {
    const { name } = request.params as { name: string };
    const state = app.registry.get(name);
    const engine = state?.state === 'ready' ? state.engine : undefined;
    const card = engine?.manifest.card ? await readFile(path.join(engine.dir, engine.manifest.card), 'utf8').catch(() => undefined) : undefined;
    if (card === undefined) throw new ApiError(404, state ? 'NOT_FOUND' : 'UNKNOWN_MODEL', state ? `model ${name} has no readable card` : `no model named ${name}`);
    return reply.type('text/markdown; charset=utf-8').send(card);
  });

  app.post('/models/:name/reload', { schema: routeSchema('reloadModel'), config: { auth: true } }, async (request) => {
    const { name } = request.params as { name: string };
    const found = (await listBundles(opts.config.MODELS_DIR).catch((): string[] => [])).includes(name);
    if (!found) throw new ApiError(404, 'UNKNOWN_MODEL', `no bundle named ${name} in the models directory`);
    const r = await app.registry.reload(name);
    if (!r.reloaded) throw new ApiError(422, 'BUNDLE_INVALID', `${r.error}${r.state?.state === 'ready' ? '; the serving version stays' : ''}`);
    const s = r.state as Extract<ModelState, { state: 'ready' }>;
    return { name, state: s.state, version: s.engine.manifest.version, provider: s.engine.status.provider };
  });
}
