import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';
import { fromRoot } from '../src/paths.js';

// The command-line tools answer --help with their usage and a bad option with a message, never a stack trace.
// The built tools (npm test builds first), as npm run eval and the others run them.
const built = (tool: string) => fromRoot('dist', 'src', 'cli', `${tool}.js`);
const run = (tool: string, args: string[]) => spawnSync(process.execPath, [built(tool), ...args], { encoding: 'utf8', timeout: 300_000 });
const skip = existsSync(built('eval')) ? false : 'SKIPPED: not built (npm run build)';

for (const tool of ['eval', 'bench', 'soak', 'prepare-images', 'score-images']) {
  t.test(`${tool}: --help and an unknown option`, { skip }, async (t) => {
    const help = run(tool, ['--help']);
    t.equal(help.status, 0, help.stderr);
    t.match(help.stdout, /^usage: /);

    const bad = run(tool, ['--no-such-option']);
    t.equal(bad.status, 2);
    t.match(bad.stderr, /Unknown option '--no-such-option'/);
    t.match(bad.stderr, /usage: /);
    t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });
}

t.test('a required option missing is named', { skip }, async (t) => {
  const r = run('eval', ['--model', 'mtd-mnv2-incv3']);
  t.equal(r.status, 2);
  t.match(r.stderr, /missing --data/);
});

t.test('soak: a request count that is not a positive integer is refused before any server starts', { skip }, async (t) => {
  const r = run('soak', ['--requests', 'lots']);
  t.equal(r.status, 2);
  t.match(r.stderr, /--requests must be a positive integer/);
});
