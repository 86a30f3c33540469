import { spawn } from 'node:child_process';
import t from 'tap';
import { fromRoot } from '../src/paths.js';
import { FIXTURE_MODELS_DIR } from './helpers/fixtures.js';
import { texture } from './helpers/images.js';

// The real executable (src/server.ts), a SIGTERM while requests are in flight: they are answered, then it exits 0.
t.test('SIGTERM finishes in-flight requests and exits 0', async (t) => {
  const port = 21000 + Math.floor(Math.random() * 2000);
  const child = spawn(process.execPath, [...process.execArgv, fromRoot('src', 'server.ts')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', MODELS_DIR: FIXTURE_MODELS_DIR, DEFAULT_MODEL: 'tiny', EXECUTION_PROVIDERS: 'cpu', MAX_BATCH: '1', LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const image = await texture(600, 600, 'png');
  const requests = Array.from({ length: 6 }, () => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'x.png');
    return fetch(`${base}/detect?include=heatmap`, { method: 'POST', body: form }).then((r) => r.status, (e) => `error ${e.message}`);
  });
  await new Promise((r) => setTimeout(r, 100));
  const signalled = performance.now();
  child.kill('SIGTERM');
  const statuses = await Promise.all(requests);
  t.same([...new Set(statuses)], [200], `in-flight requests answered (${statuses.join(' ')})`);
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 20 s'), 20_000))]);
  t.equal(code, 0, `exit code (stderr: ${stderr.slice(-300)})`);
  const seconds = (performance.now() - signalled) / 1000;
  // A deadline, not a speed figure: without "Connection: close" on answers given while closing, the server
  // waited for clients' keep-alive sockets (seen: 11 s, and 70 s in-process).
  t.ok(seconds < 10, `exited ${seconds.toFixed(1)} s after SIGTERM`);
  if (code !== 0) child.kill('SIGKILL');
});
