import { ApiError } from '../http/errors.js';
import type { InferencePool, Outputs } from './pool.js';

export interface BatcherOptions {
  maxBatch: number;
  /** How long the first queued image may wait for others while a worker is idle. */
  maxWaitMs: number;
  /** Images waiting for a worker; beyond it, requests are refused with 503. */
  maxQueue: number;
  /** Bytes of one image's pixels (H x W x 3). */
  itemSize: number;
  /** Batch sizes a run may use; a smaller batch is padded up to the next one (fixed shapes keep GPU arenas stable). */
  batchSizes?: number[];
  onBatch?: (size: number, ms: number) => void;
}

export interface ItemResult {
  /** Each graph output's slice for this image, with its dimensions less the batch. */
  outputs: Record<string, { data: Float32Array; dims: number[] }>;
  queueMs: number;
  inferenceMs: number;
  batchSize: number;
}

interface Item {
  pixels: Uint8Array;
  enqueued: number;
  resolve: (r: ItemResult) => void;
  reject: (e: Error) => void;
}

export class OverloadedError extends ApiError {
  constructor(retryAfterSeconds: number) {
    super(503, 'OVERLOADED', 'the server is at capacity; retry shortly', { 'retry-after': String(retryAfterSeconds) });
  }
}

/** Dynamic micro-batching in front of the worker pool, through a bounded queue. */
export class Batcher {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private inflight = 0;

  constructor(private readonly pool: InferencePool, private readonly opts: BatcherOptions) {
    pool.on('idle', () => this.pump());
  }

  get depth(): number {
    return this.queue.length;
  }

  submit(pixels: Uint8Array): Promise<ItemResult> {
    if (pixels.length !== this.opts.itemSize) return Promise.reject(new RangeError(`image of ${pixels.length} bytes, expected ${this.opts.itemSize}`));
    if (this.closing) return Promise.reject(new ApiError(503, 'MODEL_NOT_READY', 'the model is being unloaded', { 'retry-after': '1' }));
    if (this.queue.length >= this.opts.maxQueue) return Promise.reject(new OverloadedError(1));
    return new Promise((resolve, reject) => {
      this.queue.push({ pixels, enqueued: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /**
   * Refuses new images, lets the queued and running ones finish (up to `graceMs`), then fails whatever is
   * left. Used for shutdown and unload: in-flight requests are answered, not dropped.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = performance.now() + graceMs;
    while ((this.queue.length > 0 || this.inflight > 0) && performance.now() < deadline) {
      this.pump();
      await new Promise((r) => setTimeout(r, 10));
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const item of this.queue.splice(0)) item.reject(new ApiError(503, 'MODEL_NOT_READY', 'the model was unloaded before this image ran', { 'retry-after': '1' }));
  }

  private runSize(n: number): number {
    const sizes = this.opts.batchSizes;
    return sizes?.find((s) => s >= n) ?? n;
  }

  private pump(): void {
    while (this.queue.length > 0 && this.pool.idle > 0) {
      const waited = performance.now() - this.queue[0].enqueued;
      // Wait for company only while the backlog is short and the oldest image is young.
      if (!this.closing && this.queue.length < this.opts.maxBatch && waited < this.opts.maxWaitMs) {
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, Math.max(0, this.opts.maxWaitMs - waited));
        }
        return;
      }
      clearTimeout(this.timer);
      this.timer = undefined;
      this.dispatch(this.queue.splice(0, this.opts.maxBatch));
    }
  }

  private dispatch(items: Item[]): void {
    const n = items.length;
    const runN = this.runSize(n);
    const size = this.opts.itemSize;
    const input = new Uint8Array(runN * size);
    items.forEach((it, i) => input.set(it.pixels, i * size));
    const start = performance.now();
    this.inflight++;
    this.pool.run(input, runN).finally(() => this.inflight--).then(
      ({ outputs, ms }) => {
        this.opts.onBatch?.(n, ms);
        items.forEach((it, i) => it.resolve({ outputs: slice(outputs, i, runN), queueMs: start - it.enqueued, inferenceMs: ms, batchSize: n }));
      },
      (err: Error) => items.forEach((it) => it.reject(err)),
    );
  }
}

function slice(outputs: Outputs, i: number, batch: number): ItemResult['outputs'] {
  const out: ItemResult['outputs'] = {};
  for (const [name, { data, dims }] of Object.entries(outputs)) {
    const per = data.length / batch;
    out[name] = { data: data.subarray(i * per, (i + 1) * per), dims: dims.slice(1) };
  }
  return out;
}
