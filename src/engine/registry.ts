import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
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

/** What identifies a bundle's content on disk: size and mtime of its manifest and ONNX files. */
async function fingerprint(dir: string): Promise<string> {
  const parts = await Promise.all(['manifest.json', 'teacher.onnx', 'student.onnx'].map((f) => stat(path.join(dir, f)).then((s) => `${f}:${s.size}:${s.mtimeMs}`, () => `${f}:-`)));
  return parts.join('|');
}

export type ReloadResult = { reloaded: true; state: ModelState } | { reloaded: false; error: string; state?: ModelState };

/**
 * The models of MODELS_DIR. A bundle that cannot be loaded is kept as 'failed' with the reason: the server
 * still starts and reports it as not ready. A changed bundle is loaded and warmed beside the serving one,
 * then swapped in; the old engine finishes the requests that hold it and is released. Emits 'change'.
 */
export class ModelRegistry extends EventEmitter {
  private models = new Map<string, ModelState>();
  private prints = new Map<string, string>();
  private retiring = new Set<Promise<void>>();
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly modelsDir: string, private readonly opts: EngineOptions, private readonly log: RegistryLogger) {
    super();
  }

  private set(state: ModelState): void {
    this.models.set(state.name, state);
    this.emit('change', state);
  }

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

  /** Loads (or first loads) a bundle; the state it ends in is also stored. */
  async load(name: string): Promise<ModelState> {
    this.set({ name, state: 'loading' });
    const state = await this.open(name);
    this.set(state);
    return state;
  }

  private async open(name: string): Promise<ModelState> {
    const t0 = performance.now();
    const dir = path.join(this.modelsDir, name);
    this.prints.set(name, await fingerprint(dir));
    let state: ModelState;
    try {
      const bundle = await loadBundle(dir);
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
    return state;
  }

  /**
   * Loads the bundle again and swaps it in once warm. While the new one loads, and if it is refused, the
   * serving engine keeps serving.
   */
  async reload(name: string): Promise<ReloadResult> {
    const old = this.models.get(name);
    const next = await this.open(name);
    if (next.state !== 'ready') {
      if (old?.state === 'ready') {
        this.log.warn({ model: name, error: next.state === 'failed' ? next.error : next.state }, `model ${name}: new version refused, the serving one stays`);
        return { reloaded: false, error: next.state === 'failed' ? next.error : 'not ready', state: old };
      }
      this.set(next);
      return { reloaded: false, error: next.state === 'failed' ? next.error : 'not ready', state: next };
    }
    this.set(next);
    if (old?.state === 'ready') this.retire(old.engine);
    this.log.info({ model: name, from: old?.state === 'ready' ? old.engine.manifest.version : undefined, to: next.engine.manifest.version }, `model ${name} swapped in`);
    return { reloaded: true, state: next };
  }

  /** Closes a swapped-out engine once the requests holding it are done. */
  private retire(engine: ModelEngine): void {
    const p = engine.close().catch((err) => this.log.error({ err }, 'closing a retired engine failed'));
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }

  /** Looks for new, changed and removed bundles, and acts on them. */
  async rescan(): Promise<void> {
    let names: string[];
    try {
      names = await listBundles(this.modelsDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (this.closed) return;
      const known = this.models.get(name);
      if (!known) await this.load(name);
      else if (known.state !== 'loading' && (await fingerprint(path.join(this.modelsDir, name))) !== this.prints.get(name)) await this.reload(name);
    }
    for (const [name, state] of this.models) {
      if (names.includes(name) || state.state === 'loading') continue;
      this.models.delete(name);
      this.prints.delete(name);
      this.emit('change', { name, state: 'failed', error: 'removed' });
      if (state.state === 'ready') this.retire(state.engine);
      this.log.info({ model: name }, `model ${name} removed from ${this.modelsDir}; unloaded`);
    }
  }

  /** Rescans every `seconds` (0: never). */
  watch(seconds: number): void {
    if (seconds <= 0) return;
    let busy = false;
    this.poller = setInterval(() => {
      if (busy) return;
      busy = true;
      void this.rescan().finally(() => (busy = false));
    }, seconds * 1000);
    this.poller.unref();
  }

  get(name: string): ModelState | undefined {
    return this.models.get(name);
  }

  list(): ModelState[] {
    return [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Stops watching; each engine finishes the requests holding it (up to graceMs), then is unloaded. */
  async close(graceMs = 10_000): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    const ready = this.list().filter((m): m is Extract<ModelState, { state: 'ready' }> => m.state === 'ready');
    this.models.clear();
    await Promise.all([...ready.map((m) => m.engine.close(graceMs)), ...this.retiring]);
  }
}
