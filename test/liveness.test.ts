import t from 'tap';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';
import { gaugeOf, sleep, waitFor } from './helpers/wait.js';

// session.run() blocks the thread it runs on; inference runs in workers so that the main thread stays
// free. While detections keep the worker busy, /healthz and /metrics must keep answering.
t.test('/healthz and /metrics answer while inference is saturated', async (t) => {
  const app = await testApp({ MAX_BATCH: '1', WORKERS: '1', QUEUE_SIZE: '1000', MAX_FILES: '16' });
  t.teardown(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const image = await texture(400, 300, 'png');
  const body = multipart(Array.from({ length: 16 }, () => ({ data: image })));
  const detections: Promise<number>[] = [];
  const send = () => detections.push(fetch(`${address}/detect`, { method: 'POST', body: body.payload, headers: body.headers }).then((r) => r.status));
  // Saturation is read from the server itself: a /metrics answer that reports images waiting for the worker
  // was given while the worker was busy. Detections are sent until five such answers are counted (however
  // fast the machine, the queue refills), bounded in count.
  const probes: number[] = [];
  let whileSaturated = 0;
  for (let i = 0; i < 4; i++) send();
  while (whileSaturated < 5 && detections.length < 200) {
    const h = await fetch(`${address}/healthz`);
    const m = await fetch(`${address}/metrics`);
    probes.push(Math.max(h.status, m.status));
    if (gaugeOf(await m.text(), 'mixdistill_queue_depth', 'tiny') > 0) whileSaturated++;
    else for (let i = 0; i < 4; i++) send();
    await sleep(20);
  }
  const statuses = await Promise.all(detections);
  t.same([...new Set(statuses)], [200], `every detection answered (${detections.length})`);
  t.equal(whileSaturated, 5, `health and metrics answered while images were queued behind the busy worker (${probes.length} probes)`);
  t.same([...new Set(probes)], [200], 'every probe answered 200');
});

t.test('closing the app finishes the requests in flight, then releases the workers', async (t) => {
  // Images wait up to BATCH_WAIT_MS (1 s) for a batch of 16 that ten requests cannot make, so requests are
  // surely in flight when close() is called; close() then runs them at once.
  const app = await testApp({ MAX_BATCH: '16', BATCH_WAIT_MS: '1000', WORKERS: '1', QUEUE_SIZE: '100' });
  const form = multipart([{ data: await texture(300, 300, 'png') }]);
  let answered = 0;
  const inflight = Array.from({ length: 10 }, () => app.inject({ method: 'POST', url: '/detect', ...form }).finally(() => answered++));
  // Close once every request is answered or held by the model (past Fastify's own refusal of new requests).
  const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const held = await waitFor('all ten requests in flight or answered', async () => {
    const n = gaugeOf(await metrics(), 'mixdistill_requests_in_progress', 'tiny');
    return n + answered === 10 && n;
  }, { everyMs: 5 });
  await app.close();
  const statuses = (await Promise.all(inflight)).map((r) => r.statusCode);
  t.ok(held > 0, `${held} requests were in flight at close()`);
  t.same([...new Set(statuses)], [200], `every request in flight was answered (${statuses.join(' ')})`);
});
