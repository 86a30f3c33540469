import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The service's Prometheus metrics, in a registry of the app's own (tests build many apps). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'mixdistill_http_requests_total', help: 'HTTP requests by route, model and status', labelNames: ['route', 'model', 'status'], registers: [this.registry] });
  readonly requestSeconds = new Histogram({ name: 'mixdistill_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['route', 'status'], buckets: SECONDS, registers: [this.registry] });
  readonly stageSeconds = new Histogram({ name: 'mixdistill_stage_duration_seconds', help: 'Per-image duration of each stage: decode, preprocess, queue, inference, postprocess, encode', labelNames: ['model', 'stage'], buckets: SECONDS, registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'mixdistill_batch_size', help: 'Images per inference run', labelNames: ['model'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });
  /** Set by the model registry: current queue depth and requests in progress per model, read at scrape time. */
  queueDepths: () => Iterable<[string, number]> = () => [];
  requestsInProgress: () => Iterable<[string, number]> = () => [];
  readonly queueDepth = this.scrapedPerModel('mixdistill_queue_depth', 'Images waiting for an inference worker', () => this.queueDepths());
  readonly inProgress = this.scrapedPerModel('mixdistill_requests_in_progress', 'Detection requests being handled per model, from reading the body to the answer', () => this.requestsInProgress());
  readonly scores = new Histogram({ name: 'mixdistill_anomaly_score_normalized', help: 'Normalized anomaly scores (0.5 = calibrated threshold); watch for drift', labelNames: ['model'], buckets: Array.from({ length: 20 }, (_, i) => (i + 1) / 20), registers: [this.registry] });
  readonly tiles = new Counter({ name: 'mixdistill_tiles_total', help: 'Model inputs scored: one per image, one per tile for a tiled model', labelNames: ['model'], registers: [this.registry] });
  readonly verdicts = new Counter({ name: 'mixdistill_images_total', help: 'Scored images by verdict', labelNames: ['model', 'verdict'], registers: [this.registry] });
  readonly modelInfo = new Gauge({ name: 'mixdistill_model_info', help: '1 per loaded model, labelled with its version and the execution provider really in use', labelNames: ['model', 'version', 'provider'], registers: [this.registry] });
  readonly modelReady = new Gauge({ name: 'mixdistill_model_ready', help: '1 when the model is loaded and warmed, else 0', labelNames: ['model'], registers: [this.registry] });
  readonly warmupSeconds = new Gauge({ name: 'mixdistill_model_warmup_seconds', help: 'Warm-up latency at load', labelNames: ['model'], registers: [this.registry] });
  readonly workerLosses = new Counter({ name: 'mixdistill_worker_restarts_total', help: 'Inference workers that died and were replaced', labelNames: ['model'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** A gauge per model whose values are read when Prometheus scrapes, not kept up to date on every change. */
  private scrapedPerModel(name: string, help: string, read: () => Iterable<[string, number]>): Gauge {
    const gauge: Gauge = new Gauge({
      name,
      help,
      labelNames: ['model'],
      registers: [this.registry],
      collect: () => {
        for (const [model, value] of read()) gauge.set({ model }, value);
      },
    });
    return gauge;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
  interface FastifyRequest {
    /** The model a request used, for the request counter's label. */
    modelName?: string;
  }
}

export default fp(async function metrics(app: FastifyInstance) {
  const m = new Metrics();
  app.decorate('metrics', m);
  app.decorateRequest('modelName', undefined);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    m.requests.inc({ route, model: request.modelName ?? '', status });
    m.requestSeconds.observe({ route, status }, reply.elapsedTime / 1000);
  });
});
