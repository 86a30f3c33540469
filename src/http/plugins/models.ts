import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.js';
import { ModelRegistry, type ModelState } from '../../engine/registry.js';

declare module 'fastify' {
  interface FastifyInstance {
    registry: ModelRegistry;
    /** Settles when every bundle has been tried (loaded or failed). */
    modelsLoaded: Promise<void>;
  }
}

/**
 * The model registry. Loading starts when the app is ready and does not hold up listening: /healthz
 * answers at once and /readyz says 503 until every model is warmed.
 */
export default fp(async function models(app: FastifyInstance, opts: { config: Config }) {
  const c = opts.config;
  const m = app.metrics;
  const registry = new ModelRegistry(
    c.MODELS_DIR,
    {
      providers: c.EXECUTION_PROVIDERS,
      workers: c.WORKERS,
      intraOpThreads: c.INTRA_OP_THREADS,
      intraOpSpinning: c.INTRA_OP_SPINNING === 'on',
      maxBatch: c.MAX_BATCH,
      batchTuning: c.BATCH_TUNING === 'warmup',
      maxWaitMs: c.BATCH_WAIT_MS,
      maxQueue: c.QUEUE_SIZE,
      onBatch: (model, size) => m.batchSize.observe({ model }, size),
      onWorkerLost: (model, why) => {
        m.workerLosses.inc({ model });
        app.log.error({ model, why }, 'inference worker lost; replacing it');
      },
    },
    app.log,
  );
  app.decorate('registry', registry);
  let loading: Promise<void> = Promise.resolve();
  app.decorate('modelsLoaded', { getter: () => loading });

  m.queueDepths = () => registry.list().map((s) => [s.name, s.state === 'ready' ? s.engine.queueDepth : 0]);
  m.requestsInProgress = () => registry.list().map((s) => [s.name, s.state === 'ready' ? s.engine.activeRequests : 0]);
  // One info series per model, labelled with the version and provider in use now.
  const infoLabels = new Map<string, { model: string; version: string; provider: string }>();
  registry.on('change', (s: ModelState) => {
    m.modelReady.set({ model: s.name }, s.state === 'ready' ? 1 : 0);
    if (s.state === 'loading') return;
    const previous = infoLabels.get(s.name);
    if (previous) m.modelInfo.remove(previous);
    infoLabels.delete(s.name);
    if (s.state === 'ready') {
      const labels = { model: s.name, version: s.engine.manifest.version, provider: s.engine.status.provider };
      m.modelInfo.set(labels, 1);
      infoLabels.set(s.name, labels);
      m.warmupSeconds.set({ model: s.name }, s.engine.status.warmupMs / 1000);
    }
  });

  app.addHook('onReady', async () => {
    loading = registry.loadAll([c.DEFAULT_MODEL]).then(() => registry.watch(c.MODELS_POLL_SECONDS));
  });
  app.addHook('onClose', async () => {
    await loading;
    await registry.close();
  });
});
