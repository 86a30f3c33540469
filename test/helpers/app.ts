import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { configFrom, type Config } from '../../src/config.js';
import { FIXTURE_MODELS_DIR } from './fixtures.js';

/** An app on the fixture bundles, ready and with its models loaded. */
export async function testApp(env: Partial<Record<keyof Config, string>> = {}): Promise<FastifyInstance> {
  const app = await buildApp({
    // Lag-based shedding and the batch size timed at warm-up are off unless a test asks for them: a loaded CI
    // machine must not decide the outcome (tests that wait for a batch of MAX_BATCH need exactly that size).
    config: configFrom({ MODELS_DIR: FIXTURE_MODELS_DIR, DEFAULT_MODEL: 'tiny', EXECUTION_PROVIDERS: 'cpu', INTRA_OP_THREADS: '1', MAX_EVENT_LOOP_DELAY_MS: '0', MODELS_POLL_SECONDS: '0', BATCH_TUNING: 'off', ...env }),
  });
  await app.ready();
  await app.modelsLoaded;
  return app;
}
