import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../src/app.js';
import { loadBundle } from '../src/bundle/load.js';
import { configFrom } from '../src/config.js';
import { TINY } from './helpers/fixtures.js';
import { multipart, texture } from './helpers/images.js';

let root: string;
t.before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-bundles-'));
});
t.teardown(() => rm(root, { recursive: true, force: true }));

/** A copy of the tiny bundle under `name`, with `change` applied to its folder. */
async function variant(name: string, change: (dir: string, manifest: any) => Promise<any> | any): Promise<string> {
  const dir = path.join(root, name);
  await cp(TINY, dir, { recursive: true });
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
  manifest.name = name;
  const changed = (await change(dir, manifest)) ?? manifest;
  if (changed !== 'keep') await writeFile(path.join(dir, 'manifest.json'), typeof changed === 'string' ? changed : JSON.stringify(changed));
  return dir;
}

t.test('a bundle with a problem is refused with a message naming it', async (t) => {
  const cases: [string, (dir: string, m: any) => any, RegExp][] = [
    ['missing-student', (d) => rm(path.join(d, 'student.onnx')).then(() => undefined), /student\.onnx is missing/],
    ['corrupt-teacher', (d) => writeFile(path.join(d, 'teacher.onnx'), Buffer.from('this is not onnx at all')).then(() => undefined), /teacher\.onnx is not a readable ONNX model/],
    ['missing-manifest', (d) => rm(path.join(d, 'manifest.json')).then(() => 'keep'), /manifest\.json is missing/],
    ['bad-json', () => '{"schemaVersion": 1,', /not valid JSON/],
    ['schema', (_d, m) => ({ ...m, fusion: { ...m.fusion, reduction: { kind: 'median' } } }), /does not match bundle\.schema\.json/],
    ['wrong-name', (_d, m) => ({ ...m, name: 'other' }), /differs from its folder/],
    ['wrong-output', (_d, m) => { m.student.outputs[0].name = 'direct.nothing'; m.fusion.paths[0].student = 'direct.nothing'; return m; }, /student\.onnx has no output "direct\.nothing"/],
    ['wrong-channels', (_d, m) => { m.teacher.outputs[0].channels = 99; m.student.outputs.forEach((o: any) => { if (o.imitates === m.teacher.outputs[0].name) o.channels = 99; }); return m; }, /has 24 channels, the manifest says 99/],
    ['short-standardize', (_d, m) => { m.teacher.outputs[0].standardize = { mean: [0, 0], std: [1, 1] }; return m; }, /standardize lists 2 means and 2 stds for 24 channels/],
    ['wrong-size', (_d, m) => ({ ...m, input: { ...m.input, width: 128, height: 128 } }), /input is 64x64, the manifest says 128x128/],
    ['unknown-imitation', (_d, m) => { m.student.outputs[0].imitates = 'nowhere'; return m; }, /imitates unknown teacher output/],
    ['bad-calibration', (_d, m) => { m.calibration.image.low = m.calibration.image.threshold + 1; return m; }, /low must be below its threshold/],
  ];
  for (const [name, change, message] of cases) {
    const dir = await variant(name, change);
    await t.rejects(loadBundle(dir), message, name);
  }
});

t.test('the server starts with a broken bundle and reports it as not ready', async (t) => {
  const dir = path.join(root, 'server');
  await cp(TINY, path.join(dir, 'tiny'), { recursive: true });
  await cp(TINY, path.join(dir, 'broken'), { recursive: true });
  const m = JSON.parse(await readFile(path.join(dir, 'broken', 'manifest.json'), 'utf8'));
  await writeFile(path.join(dir, 'broken', 'manifest.json'), JSON.stringify({ ...m, name: 'broken' }));
  await rm(path.join(dir, 'broken', 'teacher.onnx'));
  const app = await buildApp({ config: configFrom({ MODELS_DIR: dir, DEFAULT_MODEL: 'tiny', EXECUTION_PROVIDERS: 'cpu', MAX_EVENT_LOOP_DELAY_MS: '0' }) });
  t.teardown(() => app.close());
  await app.ready();
  await app.modelsLoaded;
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 503);
  const broken = ready.json().models.find((x: any) => x.name === 'broken');
  t.equal(broken.state, 'failed');
  t.match(broken.error, /teacher\.onnx is missing/);
  const form = multipart([{ data: await texture(32, 32) }]);
  const refused = await app.inject({ method: 'POST', url: '/detect?model=broken', ...form });
  t.same([refused.statusCode, refused.json().code], [503, 'MODEL_NOT_READY']);
  t.match(refused.json().message, /teacher\.onnx is missing/);
  const ok = await app.inject({ method: 'POST', url: '/detect', ...form });
  t.equal(ok.statusCode, 200, 'the good model still serves');
  const models = (await app.inject({ method: 'GET', url: '/models' })).json().models;
  t.same(models.map((x: any) => [x.name, x.state]), [['broken', 'failed'], ['tiny', 'ready']]);
});

t.test('a missing default model is reported, not ignored', async (t) => {
  const app = await buildApp({ config: configFrom({ MODELS_DIR: path.dirname(TINY), DEFAULT_MODEL: 'absent', EXECUTION_PROVIDERS: 'cpu', MAX_EVENT_LOOP_DELAY_MS: '0' }) });
  t.teardown(() => app.close());
  await app.ready();
  await app.modelsLoaded;
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 503);
  t.match(ready.json().models.find((x: any) => x.name === 'absent').error, /no bundle named absent/);
});
