import { spawn } from 'node:child_process';
import t from 'tap';
import { fromRoot } from '../src/paths.js';
import { FIXTURE_MODELS_DIR } from './helpers/fixtures.js';
import { texture } from './helpers/images.js';
import { gaugeOf, waitFor, within } from './helpers/wait.js';

// The real executable (src/main.cts, which sizes libuv's pool and loads src/server.ts), a SIGTERM while requests
// are in flight: they are answered, then it exits 0.
t.test('SIGTERM finishes in-flight requests and exits 0', async (t) => {
  const port = 21000 + Math.floor(Math.random() * 2000);
  // Images wait up to BATCH_WAIT_MS (1 s) for a batch of 8 that six requests cannot make, so they are still in
  // flight when the signal comes, however fast the machine.
  const { UV_THREADPOOL_SIZE: _, ...env } = process.env;
  const child = spawn(process.execPath, [...process.execArgv, fromRoot('src', 'main.cts')], {
    env: { ...env, PORT: String(port), HOST: '127.0.0.1', MODELS_DIR: FIXTURE_MODELS_DIR, DEFAULT_MODEL: 'tiny', EXECUTION_PROVIDERS: 'cpu', MAX_BATCH: '8', BATCH_TUNING: 'off', BATCH_WAIT_MS: '1000', LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the server to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), { timeoutMs: 300_000, everyMs: 100 });
  const { availableParallelism } = await import('node:os');
  t.equal((await (await fetch(`${base}/readyz`)).json()).threadPoolSize, Math.max(4, availableParallelism()), 'the entry sized libuv\'s pool: one thread per core, at least 4');
  const image = await texture(600, 600, 'png');
  let answered = 0;
  const requests = Array.from({ length: 6 }, () => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'x.png');
    return fetch(`${base}/detect?include=heatmap`, { method: 'POST', body: form })
      .then(
        (r) => ({ status: r.status, connection: r.headers.get('connection'), at: performance.now() }),
        (e) => ({ status: `error ${e.message}`, connection: null, at: performance.now() }),
      )
      .finally(() => answered++);
  });
  // Signal once every request is held by the model or answered: none is still on its way in.
  const held = await waitFor('all six requests in flight or answered', async () => {
    const n = gaugeOf(await (await fetch(`${base}/metrics`)).text(), 'mixdistill_requests_in_progress', 'tiny');
    return n + answered === 6 && n;
  }, { everyMs: 5 });
  const signalled = performance.now();
  child.kill('SIGTERM');
  const answers = await Promise.all(requests);
  t.ok(held > 0, `${held} requests in flight at SIGTERM`);
  t.same([...new Set(answers.map((a) => a.status))], [200], `in-flight requests answered (${answers.map((a) => a.status).join(' ')})`);
  // Without "Connection: close" on answers given while closing, the server waited for clients' keep-alive
  // sockets to lapse (seen: 11 s, and 70 s in-process): checked on the header, not on a duration. The images wait
  // in the queue until their batch timer (1 s) even while closing, so most answers come well after the signal;
  // those that came 250 ms or more after it were given by a server that had long seen it.
  const late = answers.filter((a) => a.at - signalled >= 250);
  if (late.length) t.same(late.map((a) => a.connection), late.map(() => 'close'), `the ${late.length} answers given while closing say Connection: close`);
  else t.comment('every answer came within 250 ms of the signal: Connection: close not checked this time');
  // Exit code 0 also means the shutdown finished before the server's hard deadline (15 s; exit 1 past it).
  // The 60 s here only keeps a hung process from hanging the test.
  const code = await within(exited, 60_000, 'still running after 60 s');
  t.equal(code, 0, `exit code (stderr: ${stderr.slice(-300)})`);
  t.comment(`exited ${((performance.now() - signalled) / 1000).toFixed(1)} s after SIGTERM`);
});

// With SHUTDOWN_DRAIN_MS (behind a balancer), a SIGTERM first drains: new requests are still answered, on
// connections that the answers close, and /readyz says 503 draining; then the process closes and exits 0.
t.test('SIGTERM with SHUTDOWN_DRAIN_MS: answers go on while draining, /readyz 503, connections closed', async (t) => {
  const port = 23000 + Math.floor(Math.random() * 2000);
  const drainMs = 4000;
  const child = spawn(process.execPath, [...process.execArgv, fromRoot('src', 'server.ts')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', MODELS_DIR: FIXTURE_MODELS_DIR, DEFAULT_MODEL: 'tiny', EXECUTION_PROVIDERS: 'cpu', LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0', SHUTDOWN_DRAIN_MS: String(drainMs) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the server to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), { timeoutMs: 300_000, everyMs: 100 });
  const image = await texture(200, 200, 'png');
  const post = () => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'x.png');
    return fetch(`${base}/detect`, { method: 'POST', body: form });
  };
  const signalled = performance.now();
  child.kill('SIGTERM');
  // The drain is seen on /readyz; what is sent then (well inside the drain) is answered, Connection: close.
  const readyz = await waitFor('/readyz to say draining', async () => {
    const r = await fetch(`${base}/readyz`);
    return r.status === 503 && ((await r.json()) as { status: string });
  }, { everyMs: 20 });
  t.equal(readyz.status, 'draining');
  const during = await post();
  const sentAt = performance.now() - signalled;
  t.equal(during.status, 200, 'a request during the drain is answered');
  t.equal(during.headers.get('connection'), 'close', 'and its connection closed');
  t.ok(sentAt < drainMs, `sent ${sentAt.toFixed(0)} ms after the signal, inside the ${drainMs} ms drain`);
  const code = await within(exited, 60_000, 'still running after 60 s');
  t.equal(code, 0, `exit code (stderr: ${stderr.slice(-300)})`);
  t.ok(performance.now() - signalled >= drainMs, 'the process stayed for the drain');
});
