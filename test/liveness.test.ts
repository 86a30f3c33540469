import t from 'tap';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';

// session.run() blocks the thread it runs on; inference runs in workers so that the main thread stays
// free. While a burst of detections keeps the worker busy, /healthz and /metrics must keep answering.
t.test('/healthz and /metrics answer while inference is saturated', async (t) => {
  const app = await testApp({ MAX_BATCH: '1', WORKERS: '1', QUEUE_SIZE: '1000', MAX_FILES: '16' });
  t.teardown(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const image = await texture(400, 300, 'png');
  const body = multipart(Array.from({ length: 16 }, () => ({ data: image })));
  let pending = 0;
  const burst = Array.from({ length: 12 }, async () => {
    pending++;
    const res = await fetch(`${address}/detect`, { method: 'POST', body: body.payload, headers: body.headers });
    pending--;
    return res.status;
  });
  const probes: { status: number; whilePending: boolean }[] = [];
  while (pending > 0) {
    const h = await fetch(`${address}/healthz`);
    const m = await fetch(`${address}/metrics`);
    probes.push({ status: Math.max(h.status, m.status), whilePending: pending > 0 });
    await new Promise((r) => setTimeout(r, 20));
  }
  const statuses = await Promise.all(burst);
  t.same([...new Set(statuses)], [200], 'every detection answered');
  const during = probes.filter((p) => p.whilePending);
  t.ok(during.length >= 5, `${during.length} health and metrics probes were answered while detections were still running`);
  t.ok(during.every((p) => p.status === 200));
});

t.test('closing the app finishes the requests in flight, then releases the workers', async (t) => {
  const app = await testApp({ MAX_BATCH: '1', WORKERS: '1', QUEUE_SIZE: '100' });
  const form = multipart([{ data: await texture(300, 300, 'png') }]);
  const inflight = Array.from({ length: 10 }, () => app.inject({ method: 'POST', url: '/detect', ...form }));
  await new Promise((r) => setTimeout(r, 50));
  await app.close();
  const statuses = (await Promise.all(inflight)).map((r) => r.statusCode);
  t.same([...new Set(statuses)], [200], `every request in flight was answered (${statuses.join(' ')})`);
});
