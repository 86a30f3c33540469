import t from 'tap';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';

t.test('a full queue answers 503 OVERLOADED with Retry-After; every request gets an answer', async (t) => {
  // The queue is filled on purpose, not by outrunning the worker: images wait up to BATCH_WAIT_MS (1 s) for a
  // batch of MAX_BATCH 8 that a queue of 2 can never make, so every image past the second within that second is
  // refused, however fast the machine. A burst is repeated (a few times at most) only if a machine too busy to
  // submit three images within a second saw no refusal.
  const app = await testApp({ QUEUE_SIZE: '2', MAX_BATCH: '8', WORKERS: '1', BATCH_WAIT_MS: '1000' });
  t.teardown(() => app.close());
  const form = multipart([{ data: await texture(300, 300, 'png') }]);
  const statuses: number[] = [];
  for (let burst = 0; burst < 5 && !statuses.includes(503); burst++) {
    const answers = await Promise.all(Array.from({ length: 24 }, () => app.inject({ method: 'POST', url: '/detect', ...form })));
    for (const r of answers) {
      statuses.push(r.statusCode);
      if (r.statusCode !== 503) continue;
      t.equal(r.json().code, 'OVERLOADED');
      t.equal(r.headers['retry-after'], '1');
    }
  }
  t.same([...new Set(statuses)].sort(), [200, 503], `only 200 and 503, both seen (${statuses.join(' ')})`);
  const after = await app.inject({ method: 'POST', url: '/detect', ...form });
  t.equal(after.statusCode, 200, 'serves normally once the burst is over');
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /mixdistill_http_requests_total\{route="\/detect",model="tiny",status="503"\} [1-9]/);
});
