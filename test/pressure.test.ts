import t from 'tap';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';

t.test('under event-loop pressure /detect is shed with 503 OVERLOADED while /healthz still answers', async (t) => {
  const app = await testApp({ MAX_EVENT_LOOP_DELAY_MS: '20' });
  t.teardown(() => app.close());
  const form = multipart([{ data: await texture(64, 64) }]);
  t.equal((await app.inject({ method: 'POST', url: '/detect', ...form })).statusCode, 200, 'served before the stall');
  // Stall the event loop in bursts, asking between bursts, until a request is shed (the sampler runs
  // every 100 ms on the mean lag of its window).
  let shed: Awaited<ReturnType<typeof app.inject>> | undefined;
  let health = 0;
  for (let i = 0; i < 20 && !shed; i++) {
    const until = Date.now() + 150;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 1));
    const res = await app.inject({ method: 'POST', url: '/detect', ...form });
    if (res.statusCode === 503) shed = res;
    health = (await app.inject({ method: 'GET', url: '/healthz' })).statusCode;
  }
  t.ok(shed, 'a request was shed while the event loop stalled');
  t.same([shed?.json().code, shed?.headers['retry-after']], ['OVERLOADED', '1']);
  t.equal(health, 200, '/healthz is never shed');
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await app.inject({ method: 'POST', url: '/detect', ...form })).statusCode, 200, 'serves again once the lag is gone');
});

t.test('a request past REQUEST_TIMEOUT_MS gets 503 TIMEOUT', async (t) => {
  const app = await testApp({ REQUEST_TIMEOUT_MS: '100', MAX_BATCH: '1', QUEUE_SIZE: '100' });
  t.teardown(() => app.close());
  const big = await texture(1500, 1500, 'png');
  const res = await app.inject({ method: 'POST', url: '/detect?include=heatmap,overlay,paths', ...multipart(Array.from({ length: 8 }, () => ({ data: big }))) });
  t.same([res.statusCode, res.json().code], [503, 'TIMEOUT']);
  t.match(res.json().message, /longer than 100 ms/);
});
