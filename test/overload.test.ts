import t from 'tap';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';

t.test('a full queue answers 503 OVERLOADED with Retry-After; every request gets an answer', async (t) => {
  const app = await testApp({ QUEUE_SIZE: '2', MAX_BATCH: '1', WORKERS: '1', BATCH_WAIT_MS: '0' });
  t.teardown(() => app.close());
  const form = multipart([{ data: await texture(300, 300, 'png') }]);
  const answers = await Promise.all(Array.from({ length: 24 }, () => app.inject({ method: 'POST', url: '/detect', ...form })));
  const statuses = answers.map((r) => r.statusCode);
  t.same([...new Set(statuses)].sort(), [200, 503], `only 200 and 503 (${statuses.join(' ')})`);
  for (const r of answers.filter((a) => a.statusCode === 503)) {
    t.equal(r.json().code, 'OVERLOADED');
    t.equal(r.headers['retry-after'], '1');
  }
  const after = await app.inject({ method: 'POST', url: '/detect', ...form });
  t.equal(after.statusCode, 200, 'serves normally once the burst is over');
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /mixdistill_http_requests_total\{route="\/detect",model="tiny",status="503"\} [1-9]/);
});
