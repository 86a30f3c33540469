import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { TINY } from './helpers/fixtures.js';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';

async function setVersion(dir: string, version: string, extra: (m: any) => void = () => {}) {
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  m.version = version;
  extra(m);
  await writeFile(file, JSON.stringify(m));
}

t.test('reload swaps a new version in; requests in flight finish on the old one; a refused version leaves the old serving', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-reload-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await cp(TINY, path.join(root, 'tiny'), { recursive: true });
  const app = await testApp({ MODELS_DIR: root, MODELS_POLL_SECONDS: '0', MAX_BATCH: '1' });
  t.teardown(() => app.close());
  const form = multipart([{ data: await texture(400, 400) }]);
  const version = async () => (await app.inject({ method: 'POST', url: '/detect', ...form })).json().model.version;
  t.equal(await version(), '1.0.0');

  await setVersion(path.join(root, 'tiny'), '1.1.0');
  const inflight = Array.from({ length: 6 }, () => app.inject({ method: 'POST', url: '/detect', ...form }));
  await new Promise((r) => setTimeout(r, 20));
  const reloaded = await app.inject({ method: 'POST', url: '/models/tiny/reload' });
  t.same(reloaded.json(), { name: 'tiny', state: 'ready', version: '1.1.0', provider: 'cpu' });
  const answers = await Promise.all(inflight);
  t.same([...new Set(answers.map((a) => a.statusCode))], [200], 'requests in flight during the swap are answered');
  t.ok(answers.every((a) => ['1.0.0', '1.1.0'].includes(a.json().model.version)));
  t.equal(await version(), '1.1.0', 'new requests use the new version');
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /mixdistill_model_info\{model="tiny",version="1\.1\.0",provider="cpu"\} 1/);
  t.notMatch((await app.inject({ method: 'GET', url: '/metrics' })).body, /version="1\.0\.0"/, 'the old version left the info metric');

  await setVersion(path.join(root, 'tiny'), '2.0.0', (m) => (m.student.outputs[0].channels = 999));
  const refused = await app.inject({ method: 'POST', url: '/models/tiny/reload' });
  t.same([refused.statusCode, refused.json().code], [422, 'BUNDLE_INVALID']);
  t.match(refused.json().message, /the serving version stays/);
  t.equal(await version(), '1.1.0', 'the old version still serves');
  t.same((await app.inject({ method: 'POST', url: '/models/none/reload' })).json().code, 'UNKNOWN_MODEL');
});

t.test('the folder is rescanned: new, changed and removed bundles', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-rescan-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await cp(TINY, path.join(root, 'tiny'), { recursive: true });
  const app = await testApp({ MODELS_DIR: root, MODELS_POLL_SECONDS: '0' });
  t.teardown(() => app.close());
  await cp(TINY, path.join(root, 'second'), { recursive: true });
  await setVersion(path.join(root, 'second'), '0.9.0', (m) => (m.name = 'second'));
  await setVersion(path.join(root, 'tiny'), '1.2.0');
  await app.registry.rescan();
  const models = async () => (await app.inject({ method: 'GET', url: '/models' })).json().models.map((m: any) => [m.name, m.state, m.version]);
  t.same(await models(), [['second', 'ready', '0.9.0'], ['tiny', 'ready', '1.2.0']]);
  await rm(path.join(root, 'second'), { recursive: true });
  await app.registry.rescan();
  t.same(await models(), [['tiny', 'ready', '1.2.0']]);
});
