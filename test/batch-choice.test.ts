import t from 'tap';
import { chooseMaxBatch, median } from '../src/engine/batch-choice.js';
import { testApp } from './helpers/app.js';

t.test('chooseMaxBatch: the smallest batch within the tolerance of the best time per image', async (t) => {
  const timings = (ms: number[]) => ms.map((msPerImage, i) => ({ batch: 2 ** i, msPerImage }));
  t.equal(chooseMaxBatch(timings([10, 9.8, 9.0, 9.1])), 4, 'batch 8 is no faster than 4: 4');
  t.equal(chooseMaxBatch(timings([10, 12, 14, 16])), 1, 'a CPU the session already fills: every larger batch is slower');
  t.equal(chooseMaxBatch(timings([10, 5, 2.5, 1.2])), 8, 'a GPU: each doubling pays');
  t.equal(chooseMaxBatch(timings([10, 10.4, 11])), 1, 'within 5 %: the smaller batch (less waiting)');
  t.equal(chooseMaxBatch(timings([10, 9, 8]), 0.2), 2, 'a wider tolerance');
  t.throws(() => chooseMaxBatch([]));
});

t.test('median', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([7]), 7);
});

t.test('BATCH_TUNING=warmup: each batch size timed at warm-up, the engine forms batches of the chosen size, /readyz says both', async (t) => {
  const app = await testApp({ BATCH_TUNING: 'warmup', MAX_BATCH: '8' });
  t.teardown(() => app.close());
  const state = app.registry.list().find((s) => s.name === 'tiny')!;
  if (state.state !== 'ready') throw new Error('tiny is not ready');
  const st = state.engine.status;
  t.same(st.batchTimings.map((b) => b.batch), [1, 2, 4, 8]);
  t.ok(st.batchTimings.every((b) => b.msPerImage > 0));
  t.equal(st.maxBatch, chooseMaxBatch(st.batchTimings));
  const ready = (await app.inject({ method: 'GET', url: '/readyz' })).json().models.find((m: any) => m.name === 'tiny');
  t.equal(ready.maxBatch, st.maxBatch);
  t.same(ready.batchTimings.map((b: any) => b.batch), [1, 2, 4, 8]);
});

t.test('BATCH_TUNING=off: batches up to MAX_BATCH, nothing timed', async (t) => {
  const app = await testApp({ BATCH_TUNING: 'off', MAX_BATCH: '4' });
  t.teardown(() => app.close());
  const ready = (await app.inject({ method: 'GET', url: '/readyz' })).json().models.find((m: any) => m.name === 'tiny');
  t.equal(ready.maxBatch, 4);
  t.same(ready.batchTimings, []);
});
