import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';
import { fromRoot } from '../src/paths.js';

// The short form of the overload/soak script (npm run soak): only 200 and 503, every request answered,
// RSS growth under 10 %, /healthz answering, a clean exit. It runs the built server (npm test builds first).
const soak = fromRoot('dist', 'src', 'cli', 'soak.js');
t.test('short overload and soak on the default bundle', { skip: existsSync(soak) ? false : 'SKIPPED: not built (npm run build)' }, async (t) => {
  const r = spawnSync(process.execPath, [soak, '--short', '--json', fromRoot('out', 'test', 'soak.json')], { encoding: 'utf8', timeout: 240_000 });
  t.comment(r.stdout.trim());
  t.equal(r.status, 0, r.stderr.split('\n').filter((l) => /capacity|overload|soak|VIOLATION/.test(l)).join('\n'));
  t.match(r.stdout, /soak: no violation/);
});
