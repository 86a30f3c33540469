/** The executable: configuration from the environment, logger, listen, graceful shutdown. */
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  console.error(`invalid configuration: ${(err as Error).message}`);
  process.exit(2);
}

const app = await buildApp({ config, logger: { level: config.LOG_LEVEL } });

// The grace period covers the drain and then the requests in flight.
closeWithGrace({ delay: config.SHUTDOWN_DRAIN_MS + 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'fatal error, shutting down');
  else if (config.SHUTDOWN_DRAIN_MS > 0) {
    app.log.info({ signal, drainMs: config.SHUTDOWN_DRAIN_MS }, 'draining: still answering, /readyz 503, connections closed after each answer');
    app.drain();
    await new Promise((r) => setTimeout(r, config.SHUTDOWN_DRAIN_MS));
  }
  if (!err) app.log.info({ signal }, 'shutting down: finishing in-flight requests');
  await app.close();
});

await app.listen({ host: config.HOST, port: config.PORT });
app.log.info({ modelsDir: config.MODELS_DIR, defaultModel: config.DEFAULT_MODEL, providers: config.EXECUTION_PROVIDERS }, 'loading models');
