import { readdir, readFile } from 'node:fs/promises';
import t from 'tap';
import { cpuMsByGroup, groupOf, parseTaskStat, threadTicks } from '../src/bench/thread-cpu.js';
import { loadBundle } from '../src/bundle/load.js';
import { ModelEngine } from '../src/engine/model-engine.js';
import { INFERENCE_THREAD_NAME } from '../src/engine/thread-name.js';
import { fromRoot } from '../src/paths.js';

// A real line's shape (proc(5)): pid (comm) state ppid ... utime stime ..., with a name that holds ') ('.
const line = (comm: string, utime: number, stime: number) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1234 0 0 0 ${utime} ${stime} 0 0 20 0 9 0 100 0 0 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0`;

t.test('parseTaskStat reads the name and user + system ticks, whatever the name holds', async (t) => {
  t.same(parseTaskStat(line('node', 120, 30)), { name: 'node', ticks: 150 });
  t.same(parseTaskStat(line('odd) (name', 5, 6)), { name: 'odd) (name', ticks: 11 });
  t.throws(() => parseTaskStat('garbage'), /not a \/proc stat line/);
});

t.test('cpuMsByGroup splits the ticks between two snapshots into main, inference, libvips and the rest', async (t) => {
  const snap = (rows: [string, string, number][]) => new Map(rows.map(([tid, name, ticks]) => [tid, { name, ticks }]));
  const before = snap([['10', 'node', 100], ['11', 'node', 50], ['12', INFERENCE_THREAD_NAME, 200]]);
  const after = snap([['10', 'node', 140], ['11', 'node', 60], ['12', INFERENCE_THREAD_NAME, 300], ['13', 'libvips worker', 20]]);
  // 100 ticks a second; per 10 images: main 40 ticks = 400 ms -> 40 ms an image, and so on; thread 13 was born in between.
  t.same(cpuMsByGroup(before, after, 10, 10, 100), { main: 40, inference: 100, libvips: 20, other: 10 });
  t.equal(groupOf('10', 10, 'whatever'), 'main');
});

t.test('an inference worker names its thread, so per-thread figures (and top -H) can tell it apart', { skip: process.platform !== 'linux' && 'per-thread names are Linux only' }, async (t) => {
  const engine = await ModelEngine.create(await loadBundle(fromRoot('test', 'fixtures', 'bundles', 'tiny')), { providers: ['cpu'], workers: 1, intraOpThreads: 1, maxBatch: 1, maxWaitMs: 0, maxQueue: 4 });
  t.teardown(() => engine.close());
  const names = await Promise.all((await readdir('/proc/self/task')).map((tid) => readFile(`/proc/self/task/${tid}/comm`, 'utf8').then((s) => s.trim(), () => '')));
  t.ok(names.includes(INFERENCE_THREAD_NAME), `a thread named ${INFERENCE_THREAD_NAME} among ${[...new Set(names)].join(', ')}`);
  const ticks = await threadTicks(process.pid);
  t.ok(ticks && [...ticks.values()].some((x) => x.name === INFERENCE_THREAD_NAME), 'threadTicks sees it');
});
