import type { BatchTiming } from './batch-choice.js';

/** Messages between the main thread and an inference worker. */
export interface WorkerInit {
  model: Uint8Array;
  inputName: string;
  /** [H, W, 3] of one image's 8-bit pixels. */
  imageShape: [number, number, number];
  providers: string[];
  intraOpThreads: number;
  intraOpSpinning: boolean;
  /** Batch sizes run once at start, so arenas are sized before traffic. */
  warmupBatches: number[];
  /** Batch sizes then timed, `timedRuns` times each, round-robin, for the engine's choice of batch size. */
  timedBatches: number[];
  timedRuns: number;
}

export interface EpFailure {
  provider: string;
  error: string;
}

export type FromWorker =
  | { type: 'ready'; provider: string; warmupMs: number; fallbacks: EpFailure[]; batchTimings: BatchTiming[] }
  | { type: 'failed'; error: string; fallbacks: EpFailure[] }
  | { type: 'result'; id: number; outputs: Record<string, { data: Float32Array; dims: number[] }>; ms: number }
  | { type: 'error'; id: number; error: string };

export interface RunRequest {
  type: 'run';
  id: number;
  input: Uint8Array;
  batch: number;
}
