import path from 'node:path';
import { BundleError, listBundles, loadBundle } from '../bundle/load.js';
import type { Manifest } from '../bundle/manifest.js';
import { ModelEngine, type EngineOptions } from './model-engine.js';

export type ModelState =
  | { name: string; state: 'loading' }
  | { name: string; state: 'ready'; engine: ModelEngine; loadedAt: string }
  | { name: string; state: 'failed'; error: string; manifest?: Manifest };

export interface RegistryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The models of MODELS_DIR. A bundle that cannot be loaded is kept as 'failed' with the reason: the server
 * still starts and reports it as not ready.
 */
export class ModelRegistry {
  private models = new Map<string, ModelState>();
  private active = 0;

  constructor(private readonly modelsDir: string, private readonly opts: EngineOptions, private readonly log: RegistryLogger) {}

  /** Loads every bundle of the folder; a `required` name that is absent is reported as failed. */
  async loadAll(required: string[] = []): Promise<void> {
    let names: string[];
    try {
      names = await listBundles(this.modelsDir);
    } catch (err) {
      this.log.error({ modelsDir: this.modelsDir, err: (err as Error).message }, 'models directory cannot be read');
      names = [];
    }
    for (const n of required) if (!names.includes(n)) this.models.set(n, { name: n, state: 'failed', error: `no bundle named ${n} in ${this.modelsDir}` });
    await Promise.all(names.map((n) => this.load(n)));
  }

  async load(name: string): Promise<ModelState> {
    this.models.set(name, { name, state: 'loading' });
    const t0 = performance.now();
    let state: ModelState;
    try {
      const bundle = await loadBundle(path.join(this.modelsDir, name));
      try {
        const engine = await ModelEngine.create(bundle, this.opts);
        state = { name, state: 'ready', engine, loadedAt: new Date().toISOString() };
        const s = engine.status;
        if (s.fallbacks.length > 0) {
          this.log.warn({ model: name, provider: s.provider, fallbacks: s.fallbacks }, `model ${name}: preferred execution provider unavailable, running on ${s.provider}`);
        }
        this.log.info({ model: name, version: bundle.manifest.version, provider: s.provider, warmupMs: Math.round(s.warmupMs), loadMs: Math.round(performance.now() - t0) }, `model ${name} ready`);
      } catch (err) {
        state = { name, state: 'failed', error: `bundle ${name}: cannot start inference (${(err as Error).message})`, manifest: bundle.manifest };
      }
    } catch (err) {
      state = { name, state: 'failed', error: err instanceof BundleError ? err.message : `bundle ${name}: ${(err as Error).message}` };
    }
    if (state.state === 'failed') this.log.error({ model: name, error: state.error }, `model ${name} not loaded`);
    this.models.set(name, state);
    return state;
  }

  get(name: string): ModelState | undefined {
    return this.models.get(name);
  }

  list(): ModelState[] {
    return [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Runs a request's work on the models; close() waits for these before stopping engines. */
  async use<T>(work: () => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
    }
  }

  /** Waits for requests in progress (up to graceMs), then unloads every model. */
  async close(graceMs = 10_000): Promise<void> {
    const deadline = performance.now() + graceMs;
    while (this.active > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const ready = this.list().filter((m): m is Extract<ModelState, { state: 'ready' }> => m.state === 'ready');
    this.models.clear();
    await Promise.all(ready.map((m) => m.engine.close()));
  }
}
