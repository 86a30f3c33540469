/** Messages between the main thread and an inference worker. */
export interface WorkerInit {
  model: Uint8Array;
  inputName: string;
  /** [3, H, W] of one image. */
  imageShape: [number, number, number];
  providers: string[];
  intraOpThreads: number;
  /** Batch sizes run once at start, so arenas are sized before traffic. */
  warmupBatches: number[];
}

export interface EpFailure {
  provider: string;
  error: string;
}

export type FromWorker =
  | { type: 'ready'; provider: string; warmupMs: number; fallbacks: EpFailure[] }
  | { type: 'failed'; error: string; fallbacks: EpFailure[] }
  | { type: 'result'; id: number; outputs: Record<string, { data: Float32Array; dims: number[] }>; ms: number }
  | { type: 'error'; id: number; error: string };

export interface RunRequest {
  type: 'run';
  id: number;
  input: Float32Array;
  batch: number;
}
