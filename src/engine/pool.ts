import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { BatchTiming } from './batch-choice.js';
import type { EpFailure, FromWorker, RunRequest, WorkerInit } from './messages.js';

export type Outputs = Record<string, { data: Float32Array; dims: number[] }>;

export interface PoolStatus {
  provider: string;
  warmupMs: number;
  fallbacks: EpFailure[];
  /** Time per image at each timed batch size (the first worker's; they share the machine). */
  batchTimings: BatchTiming[];
}

interface Slot {
  worker: Worker;
  busy: boolean;
  pending?: { id: number; resolve: (o: { outputs: Outputs; ms: number }) => void; reject: (e: Error) => void };
}

// worker.ts when running from sources (tests), worker.js when built.
const WORKER_URL = new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

function spawn(init: WorkerInit): Promise<{ worker: Worker; status: PoolStatus }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: init });
    // Only these listeners are removed: removeAllListeners() would also drop Node's internal hooks
    // that start the worker's message port, and later results would never arrive.
    const detach = () => {
      worker.off('error', fail);
      worker.off('exit', exited);
      worker.off('message', started);
    };
    function fail(err: Error) {
      detach();
      void worker.terminate();
      reject(err);
    }
    function exited(code: number) {
      fail(new Error(`inference worker exited with code ${code} during start`));
    }
    function started(msg: FromWorker) {
      detach();
      if (msg.type === 'ready') resolve({ worker, status: { provider: msg.provider, warmupMs: msg.warmupMs, fallbacks: msg.fallbacks, batchTimings: msg.batchTimings } });
      else if (msg.type === 'failed') fail(new Error(`${msg.error}: ${msg.fallbacks.map((f) => `${f.provider}: ${f.error}`).join('; ')}`));
      else fail(new Error(`unexpected message ${msg.type} from a starting worker`));
    }
    worker.on('error', fail);
    worker.on('exit', exited);
    worker.on('message', started);
  });
}

/**
 * N worker threads, each with its own session. The batcher asks for an idle worker, so a batch is formed
 * at the moment a worker can take it (the larger the backlog, the larger the batch). A worker that dies is
 * replaced and its batch fails with an error instead of hanging.
 */
export class InferencePool extends EventEmitter {
  private slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  status!: PoolStatus;

  private constructor(private readonly init: WorkerInit) {
    super();
  }

  static async start(init: WorkerInit, workers: number): Promise<InferencePool> {
    const pool = new InferencePool(init);
    const started = await Promise.allSettled(Array.from({ length: workers }, () => spawn(init)));
    const failed = started.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    for (const s of started) if (s.status === 'fulfilled') pool.adopt(s.value.worker);
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    const statuses = started.map((s) => (s as PromiseFulfilledResult<{ status: PoolStatus }>).value.status);
    pool.status = { ...statuses[0], warmupMs: Math.max(...statuses.map((s) => s.warmupMs)) };
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  get idle(): number {
    return this.slots.filter((s) => !s.busy).length;
  }

  private adopt(worker: Worker): void {
    const slot: Slot = { worker, busy: false };
    worker.on('message', (msg: FromWorker) => {
      const p = slot.pending;
      if (!p || (msg.type !== 'result' && msg.type !== 'error') || msg.id !== p.id) return;
      slot.pending = undefined;
      slot.busy = false;
      if (msg.type === 'result') p.resolve({ outputs: msg.outputs, ms: msg.ms });
      else p.reject(new Error(`inference failed: ${msg.error}`));
      this.emit('idle');
    });
    const died = (why: string) => {
      if (!this.slots.includes(slot)) return;
      this.slots = this.slots.filter((s) => s !== slot);
      slot.pending?.reject(new Error(`inference worker ${why}`));
      slot.pending = undefined;
      if (this.closed) return;
      this.emit('worker-lost', why);
      spawn(this.init).then(
        ({ worker: w }) => {
          if (this.closed) void w.terminate();
          else {
            this.adopt(w);
            this.emit('idle');
          }
        },
        (err: Error) => this.emit('worker-lost', `replacement failed: ${err.message}`),
      );
    };
    worker.on('messageerror', (err) => {
      const p = slot.pending;
      slot.pending = undefined;
      slot.busy = false;
      p?.reject(new Error(`inference result could not be received: ${err.message}`));
      this.emit('idle');
    });
    worker.on('error', (err) => died(`crashed: ${err.message}`));
    worker.on('exit', (code) => died(`exited with code ${code}`));
    this.slots.push(slot);
  }

  /** Runs one batch on an idle worker; the caller checks `idle` first. The input buffer is transferred. */
  run(input: Uint8Array, batch: number): Promise<{ outputs: Outputs; ms: number }> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) return Promise.reject(new Error('no idle inference worker'));
    slot.busy = true;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending = { id, resolve, reject };
      const req: RunRequest = { type: 'run', id, input, batch };
      slot.worker.postMessage(req, [input.buffer as ArrayBuffer]);
    });
  }

  /**
   * Stops the workers. A batch inside session.run is let finish first (up to `graceMs`): terminating a
   * worker in the middle of a native run aborts the whole process.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    const running = slots.filter((s) => s.pending).map((s) => new Promise<void>((resolve) => {
      const p = s.pending!;
      s.pending = { ...p, resolve: (o) => { p.resolve(o); resolve(); }, reject: (e) => { p.reject(e); resolve(); } };
    }));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const s of slots) s.pending?.reject(new Error('the model is being unloaded'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
