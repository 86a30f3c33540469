import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { fromRoot } from '../src/paths.js';

// The short form of the overload/soak script (npm run soak) on the built server, checked for what holds however
// busy the machine is: only 200 and 503, every request answered, /healthz answering, a clean exit. The figures
// that depend on the machine (RSS growth, latency, capacity) are printed here and checked by `npm run soak`.
const soak = fromRoot('dist', 'src', 'cli', 'soak.js');
const REQUESTS = 200;
t.test('short overload and soak on the default bundle: the load contract', { skip: existsSync(soak) ? false : 'SKIPPED: not built (npm run build)', timeout: 900_000 }, async (t) => {
  const json = fromRoot('out', 'test', 'soak.json');
  const r = spawnSync(process.execPath, [soak, '--short', '--no-targets', '--requests', String(REQUESTS), '--json', json], { encoding: 'utf8', timeout: 840_000 });
  t.comment(`${r.stderr.split('\n').filter((l) => /^(capacity|overload|soak)/.test(l)).join('\n')}\n${r.stdout.trim()}`);
  if (r.status !== 0) t.comment(`soak stderr: ${r.stderr.slice(-1000)}`);
  t.equal(r.status, 0, 'soak exit status');
  const report = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(report.checkTargets, false);
  for (const name of ['overload', 'soak'] as const) {
    const p = report[name];
    t.same(Object.keys(p.statuses).filter((s) => s !== '200' && s !== '503'), [], `${name}: only 200 and 503 (${JSON.stringify(p.statuses)})`);
    t.equal(Object.values(p.statuses as Record<string, number>).reduce((a, x) => a + x, 0), p.requests, `${name}: every request got a status`);
    t.same([p.errors, p.timeouts], [0, 0], `${name}: no connection error, no request left without an answer`);
    t.equal(p.healthzFailures, 0, `${name}: /healthz answered throughout`);
  }
  t.equal(report.soak.requests, REQUESTS, 'the soak phase completed all its requests');
  t.ok(report.soak.statuses['200'] > 0, 'the soak phase served some requests');
  t.equal(report.serverExitCode, 0, 'the server exited 0 on SIGTERM');
  t.same(report.violations, []);
  t.match(r.stdout, /soak: no violation of the contract/);
});
