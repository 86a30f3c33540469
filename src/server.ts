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

closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'fatal error, shutting down');
  else app.log.info({ signal }, 'shutting down: finishing in-flight requests');
  await app.close();
});

await app.listen({ host: config.HOST, port: config.PORT });
app.log.info({ modelsDir: config.MODELS_DIR, defaultModel: config.DEFAULT_MODEL, providers: config.EXECUTION_PROVIDERS }, 'loading models');
