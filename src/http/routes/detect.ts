import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { detectImage, INCLUDES, type DetectionResult, type Include } from '../../detect/detect.js';
import { ApiError } from '../errors.js';
import { routeSchema } from '../openapi.js';
import { readImages } from '../read-images.js';

interface DetectQuery {
  model?: string;
  include?: string;
  threshold?: number;
  sensitivity?: number;
  maxSide?: number;
}

/** True when the client prefers image/png over JSON (q-values honoured, ties go to the first listed). */
export function prefersPng(accept: string | undefined): boolean {
  if (!accept) return false;
  let best = { type: '', q: -1 };
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    if (type !== 'image/png' && type !== 'application/json' && type !== '*/*' && type !== 'application/*') continue;
    const q = Number(params.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? 1);
    if (q > best.q) best = { type, q };
  }
  return best.type === 'image/png';
}

const STAGES = ['decode', 'preprocess', 'queue', 'inference', 'postprocess', 'encode'] as const;

/** The answer, or 503 TIMEOUT after `ms` (the work itself runs on; a batch cannot be taken back from a worker). */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ApiError(503, 'TIMEOUT', `the request took longer than ${ms} ms`, { 'retry-after': '1' })), ms);
  });
  work.catch(() => undefined); // a late failure after the deadline is not an unhandled rejection
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export default async function detectRoutes(app: FastifyInstance, opts: { config: Config }) {
  const c = opts.config;
  const limits = { maxPixels: c.MAX_PIXELS, maxTiles: c.MAX_TILES };

  app.post('/detect', { schema: routeSchema('detect'), config: { auth: true } }, async (request, reply) => {
    const q = request.query as DetectQuery;
    if (q.threshold !== undefined && q.sensitivity !== undefined) {
      throw new ApiError(400, 'INVALID_REQUEST', 'give threshold or sensitivity, not both');
    }
    const name = q.model ?? c.DEFAULT_MODEL;
    request.modelName = name;
    const state = app.registry.get(name);
    if (!state) throw new ApiError(404, 'UNKNOWN_MODEL', `no model named ${name}; GET /models lists them`);
    if (state.state !== 'ready') {
      const why = state.state === 'failed' ? `: ${state.error}` : ' yet (loading)';
      throw new ApiError(503, 'MODEL_NOT_READY', `model ${name} is not ready${why}`, { 'retry-after': state.state === 'loading' ? '5' : '60' });
    }
    // The request keeps the engine it started on, even if a new version is swapped in meanwhile.
    const engine = state.engine;
    return engine.hold(async () => {
    const wantPng = prefersPng(request.headers.accept);
    const images = await readImages(request, { maxFiles: c.MAX_FILES, maxImageBytes: c.MAX_IMAGE_BYTES });
    if (wantPng && images.length !== 1) throw new ApiError(406, 'NOT_ACCEPTABLE', 'Accept: image/png answers one image; send one or accept JSON');
    const include = new Set((q.include ?? '').split(',').filter((s): s is Include => (INCLUDES as readonly string[]).includes(s)));
    const work = Promise.all(
      images.map((bytes, i) => detectImage(engine, bytes, i, { include, threshold: q.threshold, sensitivity: q.sensitivity, maxSide: q.maxSide, wantPng }, limits)),
    );
    const results: DetectionResult[] = await withDeadline(work, c.REQUEST_TIMEOUT_MS);

    const m = app.metrics;
    for (const r of results) {
      for (const s of STAGES) m.stageSeconds.observe({ model: name, stage: s }, r.timings[s] / 1000);
      m.scores.observe({ model: name }, r.normalizedScore);
      m.tiles.inc({ model: name }, r.tiles);
      m.verdicts.inc({ model: name, verdict: r.isAnomalous ? 'anomalous' : 'normal' });
    }
    if (wantPng) {
      const r = results[0];
      return reply
        .type('image/png')
        .header('x-anomaly-score', String(r.score))
        .header('x-normalized-score', String(r.normalizedScore))
        .header('x-is-anomalous', String(r.isAnomalous))
        .send(r.heatmapPng);
    }
    return {
      model: { name, version: engine.manifest.version },
      results: results.map(({ heatmapPng: _png, ...r }) => r),
    };
    });
  });
}
