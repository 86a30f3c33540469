import type { Bundle } from '../bundle/load.js';
import type { Manifest } from '../bundle/manifest.js';
import { composeBundle } from '../graph/compose.js';
import { PIXELS_INPUT } from '../graph/preprocess.js';
import { chooseMaxBatch } from './batch-choice.js';
import { Batcher, type ItemResult } from './batcher.js';
import { InferencePool, type PoolStatus } from './pool.js';

export interface EngineOptions {
  providers: string[];
  workers: number;
  intraOpThreads: number;
  /** ONNX Runtime's intra-op threads busy-wait between operators (its default); off leaves those cycles to the host work. */
  intraOpSpinning?: boolean;
  maxBatch: number;
  /** Time the batch sizes at warm-up and form batches only as large as pays (batch-choice.ts); else up to maxBatch. */
  batchTuning?: boolean;
  maxWaitMs: number;
  maxQueue: number;
  onBatch?: (model: string, size: number, ms: number) => void;
  onWorkerLost?: (model: string, why: string) => void;
}

/** Powers of two up to maxBatch, and maxBatch itself: the only batch shapes a GPU session sees. */
export function batchSizes(maxBatch: number): number[] {
  const sizes: number[] = [];
  for (let s = 1; s < maxBatch; s *= 2) sizes.push(s);
  sizes.push(maxBatch);
  return sizes;
}

/** One loaded model: its composed graph in a pool of workers behind a batcher. */
export class ModelEngine {
  /** Requests holding this engine; a swapped-out engine is closed once they are done. */
  private holders = 0;

  private constructor(
    readonly manifest: Manifest,
    readonly dir: string,
    private readonly pool: InferencePool,
    private readonly batcher: Batcher,
    /** The pool's status and the largest batch this engine forms. */
    readonly status: PoolStatus & { maxBatch: number },
  ) {}

  static async create(bundle: Bundle, opts: EngineOptions): Promise<ModelEngine> {
    const m = bundle.manifest;
    const model = composeBundle(bundle);
    const imageShape: [number, number, number] = [m.input.height, m.input.width, 3];
    const gpu = opts.providers[0] !== 'cpu';
    const sizes = batchSizes(opts.maxBatch);
    const pool = await InferencePool.start(
      {
        model,
        inputName: PIXELS_INPUT,
        imageShape,
        providers: opts.providers,
        intraOpThreads: opts.intraOpThreads,
        intraOpSpinning: opts.intraOpSpinning ?? true,
        warmupBatches: gpu || opts.batchTuning ? sizes : [1, opts.maxBatch].filter((v, i, a) => a.indexOf(v) === i),
        timedBatches: opts.batchTuning ? sizes : [],
        timedRuns: 3,
      },
      opts.workers,
    );
    const maxBatch = opts.batchTuning ? chooseMaxBatch(pool.status.batchTimings) : opts.maxBatch;
    // Padding only pays where shapes cost memory (GPU arenas); on CPU it would waste compute.
    const padded = pool.status.provider !== 'cpu';
    const batcher = new Batcher(pool, {
      maxBatch,
      maxWaitMs: opts.maxWaitMs,
      maxQueue: opts.maxQueue,
      itemSize: imageShape[0] * imageShape[1] * imageShape[2],
      batchSizes: padded ? batchSizes(maxBatch) : undefined,
      onBatch: (size, ms) => opts.onBatch?.(m.name, size, ms),
    });
    pool.on('worker-lost', (why: string) => opts.onWorkerLost?.(m.name, why));
    return new ModelEngine(m, bundle.dir, pool, batcher, { ...pool.status, maxBatch });
  }

  get queueDepth(): number {
    return this.batcher.depth;
  }

  /** Requests being handled on this engine, from reading their body to their answer. */
  get activeRequests(): number {
    return this.holders;
  }

  /** One image's pixels at the model's input size, 8-bit RGB interleaved (what resizeForModel gives). */
  infer(pixels: Uint8Array): Promise<ItemResult> {
    return this.batcher.submit(pixels);
  }

  /** Runs a request's work on this engine; close() waits for such work first. */
  async hold<T>(work: () => Promise<T>): Promise<T> {
    this.holders++;
    try {
      return await work();
    } finally {
      this.holders--;
    }
  }

  /** Waits for the requests holding the engine, finishes queued and running images (up to graceMs), then stops the workers. */
  async close(graceMs = 10_000): Promise<void> {
    const deadline = performance.now() + graceMs;
    while (this.holders > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.batcher.close(Math.max(0, deadline - performance.now()));
    await this.pool.close(Math.max(1000, deadline - performance.now()));
  }
}
