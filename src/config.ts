import os from 'node:os';
import envSchema from 'env-schema';

/** Configuration from the environment, validated once at start (README: Configuration). */
export interface Config {
  HOST: string;
  PORT: number;
  MODELS_DIR: string;
  MODELS_POLL_SECONDS: number;
  DEFAULT_MODEL: string;
  EXECUTION_PROVIDERS: string[];
  WORKERS: number;
  INTRA_OP_THREADS: number;
  INTRA_OP_SPINNING: 'on' | 'off';
  MAX_BATCH: number;
  BATCH_TUNING: 'warmup' | 'off';
  UV_THREADPOOL_SIZE: number;
  BATCH_WAIT_MS: number;
  QUEUE_SIZE: number;
  MAX_BODY_BYTES: number;
  MAX_IMAGE_BYTES: number;
  MAX_PIXELS: number;
  MAX_TILES: number;
  MAX_FILES: number;
  REQUEST_TIMEOUT_MS: number;
  SHUTDOWN_DRAIN_MS: number;
  MAX_EVENT_LOOP_DELAY_MS: number;
  MAX_RSS_BYTES: number;
  LOG_LEVEL: string;
  API_KEYS: string[];
}

const schema = {
  type: 'object',
  required: [],
  properties: {
    HOST: { type: 'string', default: '0.0.0.0' },
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    MODELS_DIR: { type: 'string', minLength: 1, default: 'models' },
    MODELS_POLL_SECONDS: { type: 'number', minimum: 0, default: 10 },
    DEFAULT_MODEL: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', default: 'mtd-mnv2-incv3' },
    EXECUTION_PROVIDERS: { type: 'string', pattern: '^(cuda|cpu)(,(cuda|cpu))*$', default: 'cuda,cpu' },
    WORKERS: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
    INTRA_OP_THREADS: { type: 'integer', minimum: 0, maximum: 256, default: 0 },
    // Whether ONNX Runtime's intra-op threads busy-wait for work between operators and runs (its default: on).
    INTRA_OP_SPINNING: { type: 'string', enum: ['on', 'off'], default: 'on' },
    MAX_BATCH: { type: 'integer', minimum: 1, maximum: 256, default: 8 },
    BATCH_TUNING: { type: 'string', enum: ['warmup', 'off'], default: 'warmup' },
    // libuv's pool, where sharp's image work runs; dist/src/main.cjs sets it before the pool exists (one per core,
    // at least 4); 4 is libuv's own default, which is what a process started another way has.
    UV_THREADPOOL_SIZE: { type: 'integer', minimum: 1, maximum: 1024, default: 4 },
    BATCH_WAIT_MS: { type: 'number', minimum: 0, maximum: 1000, default: 2 },
    QUEUE_SIZE: { type: 'integer', minimum: 1, maximum: 100000, default: 64 },
    MAX_BODY_BYTES: { type: 'integer', minimum: 1024, default: 64 * 1024 * 1024 },
    MAX_IMAGE_BYTES: { type: 'integer', minimum: 1024, default: 20 * 1024 * 1024 },
    MAX_PIXELS: { type: 'integer', minimum: 1, default: 40_000_000 },
    // Tiles of one image for a tiled model (input.fit tile): each is one inference, so this caps one image's cost.
    MAX_TILES: { type: 'integer', minimum: 1, maximum: 4096, default: 64 },
    MAX_FILES: { type: 'integer', minimum: 1, maximum: 256, default: 16 },
    REQUEST_TIMEOUT_MS: { type: 'integer', minimum: 100, default: 30_000 },
    SHUTDOWN_DRAIN_MS: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 },
    MAX_EVENT_LOOP_DELAY_MS: { type: 'integer', minimum: 0, default: 1000 },
    MAX_RSS_BYTES: { type: 'integer', minimum: 0, default: 0 },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    // Comma-separated; each at least 16 characters of [A-Za-z0-9._~+/=-]. Empty: no authentication.
    API_KEYS: { type: 'string', pattern: '^([A-Za-z0-9._~+/=-]{16,}(,[A-Za-z0-9._~+/=-]{16,})*)?$', default: '' },
  },
} as const;

/** Reads and validates the environment; throws with every problem named. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const raw = envSchema<Omit<Config, 'EXECUTION_PROVIDERS' | 'API_KEYS'> & { EXECUTION_PROVIDERS: string; API_KEYS: string }>({ schema, data: env, dotenv: false });
  const providers = [...new Set(raw.EXECUTION_PROVIDERS.split(','))];
  return {
    ...raw,
    EXECUTION_PROVIDERS: providers,
    API_KEYS: raw.API_KEYS ? raw.API_KEYS.split(',') : [],
    // 0: share the cores among the workers.
    INTRA_OP_THREADS: raw.INTRA_OP_THREADS || Math.max(1, Math.floor(os.availableParallelism() / raw.WORKERS)),
  };
}

/** Defaults for tests and tools; same validation. */
export const configFrom = (overrides: Partial<Record<keyof Config, string>>) => loadConfig({ ...overrides });
