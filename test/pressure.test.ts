import t from 'tap';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';
import { sleep, waitFor } from './helpers/wait.js';

t.test('under event-loop pressure /detect is shed with 503 OVERLOADED while /healthz still answers', async (t) => {
  const app = await testApp({ MAX_EVENT_LOOP_DELAY_MS: '20' });
  t.teardown(() => app.close());
  const form = multipart([{ data: await texture(64, 64) }]);
  const detect = () => app.inject({ method: 'POST', url: '/detect', ...form });
  // A loaded machine may lag past 20 ms by itself now and then: wait for a calm moment rather than assume one.
  await waitFor('a detection served before the stall', async () => (await detect()).statusCode === 200);
  // Stall the event loop in bursts of 150 ms of busy work (wall-clock, so a loaded machine stalls it as long),
  // asking between bursts, until a request is shed (the sampler runs every 100 ms on the lag of its window).
  let shed: Awaited<ReturnType<typeof app.inject>> | undefined;
  const health: number[] = [];
  for (let i = 0; i < 50 && !shed; i++) {
    const until = Date.now() + 150;
    while (Date.now() < until);
    await sleep(1);
    const res = await detect();
    if (res.statusCode === 503) shed = res;
    else t.equal(res.statusCode, 200, 'a detection that is not shed is served');
    health.push((await app.inject({ method: 'GET', url: '/healthz' })).statusCode);
  }
  t.ok(shed, 'a request was shed while the event loop stalled');
  t.same([shed?.json().code, shed?.headers['retry-after']], ['OVERLOADED', '1']);
  t.same([...new Set(health)], [200], `/healthz is never shed (${health.length} probes)`);
  await waitFor('a detection served again once the lag is gone', async () => {
    const res = await detect();
    t.ok([200, 503].includes(res.statusCode), `status ${res.statusCode} while the lag fades`);
    return res.statusCode === 200;
  }, { everyMs: 100 });
});

t.test('a request past REQUEST_TIMEOUT_MS gets 503 TIMEOUT', async (t) => {
  // Deterministic on any machine: a lone image waits BATCH_WAIT_MS (1 s) for company before it runs, ten
  // times the request's 100 ms.
  const app = await testApp({ REQUEST_TIMEOUT_MS: '100', MAX_BATCH: '2', BATCH_WAIT_MS: '1000', QUEUE_SIZE: '100' });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'POST', url: '/detect', ...multipart([{ data: await texture(64, 64) }]) });
  t.same([res.statusCode, res.json().code, res.headers['retry-after']], [503, 'TIMEOUT', '1']);
  t.match(res.json().message, /longer than 100 ms/);
});
