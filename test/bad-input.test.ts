import net from 'node:net';
import t from 'tap';
import { testApp } from './helpers/app.js';
import { corpus } from './helpers/bad-inputs.js';
import { multipart, texture } from './helpers/images.js';
import { within } from './helpers/wait.js';

const limits = { maxImageBytes: 300_000, maxBodyBytes: 1_000_000, maxFiles: 4 };

t.test('the bad-input corpus: each case gets its documented status and code, and the server keeps serving', async (t) => {
  const app = await testApp({ MAX_IMAGE_BYTES: String(limits.maxImageBytes), MAX_BODY_BYTES: String(limits.maxBodyBytes), MAX_FILES: String(limits.maxFiles), MAX_PIXELS: '20000000' });
  t.teardown(() => app.close());
  const cases = await corpus(limits);
  t.ok(cases.length >= 30, `${cases.length} cases`);
  for (const c of cases) {
    const { url = '/detect', payload, headers } = await c.request();
    const res = await app.inject({ method: 'POST', url, payload: payload as never, headers });
    const body = res.json();
    t.equal(res.statusCode, c.status, `${c.name}: status ${res.statusCode} (${body.code ?? ''} ${body.message ?? ''})`);
    if (c.code) t.equal(body.code, c.code, `${c.name}: code`);
    if (c.check) t.equal(c.check(body), undefined, `${c.name}: result`);
  }
  const ok = await app.inject({ method: 'POST', url: '/detect', ...multipart([{ data: await texture(32, 32) }]) });
  t.equal(ok.statusCode, 200, 'still serving');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

t.test('a slowly trickled body is cut off with 408 after REQUEST_TIMEOUT_MS', async (t) => {
  const app = await testApp({ REQUEST_TIMEOUT_MS: '500' });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => (got += d));
  sock.write('POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"images":["');
  const drip = setInterval(() => sock.write('A'), 100);
  // The drip alone would take 100,000 x 100 ms to finish the body: a close long before that was the server's.
  // The bound only keeps a server that never cuts the socket from hanging the test.
  const closed = await within(new Promise((r) => sock.on('close', () => r(true))), 120_000, false);
  clearInterval(drip);
  sock.destroy();
  t.ok(closed, 'the socket was closed by the server, not left hanging');
  t.match(got, /^HTTP\/1\.1 408/);
  const again = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(again.status, 200, 'still serving');
});
