/**
 * An inference worker: one ONNX Runtime session of the composed graph. session.run() blocks the thread
 * it runs on, so it runs here and never on the main thread (health and metrics stay responsive).
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { median } from './batch-choice.js';
import type { EpFailure, FromWorker, RunRequest, WorkerInit } from './messages.js';
import { INFERENCE_THREAD_NAME, nameThisThread } from './thread-name.js';

// Before the session exists, so that ONNX Runtime's intra-op threads, which Linux names after their creator, carry it too.
nameThisThread(INFERENCE_THREAD_NAME);

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

async function createSession(): Promise<{ session: ort.InferenceSession; provider: string; fallbacks: EpFailure[] }> {
  const fallbacks: EpFailure[] = [];
  for (const provider of init.providers) {
    try {
      // One provider at a time, so the provider that loaded is the one reported (no silent CPU fallback).
      const session = await ort.InferenceSession.create(init.model, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: init.intraOpThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // The binding turns nested keys into ORT's session config entries (session.intra_op.allow_spinning).
        extra: { session: { intra_op: { allow_spinning: init.intraOpSpinning ? '1' : '0' } } },
      });
      return { session, provider, fallbacks };
    } catch (err) {
      fallbacks.push({ provider, error: (err as Error).message.split('\n')[0] });
    }
  }
  throw Object.assign(new Error('no execution provider could load the model'), { fallbacks });
}

function feeds(input: Uint8Array, batch: number): Record<string, ort.Tensor> {
  return { [init.inputName]: new ort.Tensor('uint8', input, [batch, ...init.imageShape]) };
}

async function main(): Promise<void> {
  let ready: Awaited<ReturnType<typeof createSession>>;
  try {
    ready = await createSession();
  } catch (err) {
    post({ type: 'failed', error: (err as Error).message, fallbacks: (err as { fallbacks?: EpFailure[] }).fallbacks ?? [] });
    return;
  }
  const { session, provider, fallbacks } = ready;
  const size = init.imageShape.reduce((a, b) => a * b, 1);
  const t0 = performance.now();
  for (const b of init.warmupBatches) await session.run(feeds(new Uint8Array(size * b), b));
  // Round-robin over the sizes, so that a slow stretch of the machine does not fall on one size only.
  const times = new Map<number, number[]>(init.timedBatches.map((b) => [b, []]));
  for (let r = 0; r < init.timedRuns; r++) {
    for (const b of init.timedBatches) {
      const x = feeds(new Uint8Array(size * b).fill(128), b);
      const t = performance.now();
      await session.run(x);
      times.get(b)!.push(performance.now() - t);
    }
  }
  const batchTimings = [...times].map(([batch, ms]) => ({ batch, msPerImage: median(ms) / batch }));
  post({ type: 'ready', provider, warmupMs: performance.now() - t0, fallbacks, batchTimings });

  port.on('message', async (req: RunRequest) => {
    try {
      const start = performance.now();
      const out = await session.run(feeds(req.input, req.batch));
      const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, t] of Object.entries(out)) {
        const data = t.data as Float32Array;
        outputs[name] = { data, dims: [...t.dims] };
        transfer.push(data.buffer as ArrayBuffer);
      }
      post({ type: 'result', id: req.id, outputs, ms: performance.now() - start }, [...new Set(transfer)]);
    } catch (err) {
      post({ type: 'error', id: req.id, error: (err as Error).message });
    }
  });
}

void main();
