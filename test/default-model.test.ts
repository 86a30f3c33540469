import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../src/app.js';
import { configFrom } from '../src/config.js';
import { DEFAULT_MODELS_DIR, SHARED_MTD } from './helpers/fixtures.js';
import { multipart, texture } from './helpers/images.js';

// The shipped default bundle, through the real API, as a user gets it after `npm start`.
t.test('the default bundle loads and scores images in every accepted format', async (t) => {
  const app = await buildApp({ config: configFrom({ MODELS_DIR: DEFAULT_MODELS_DIR, EXECUTION_PROVIDERS: 'cpu', MAX_EVENT_LOOP_DELAY_MS: '0' }) });
  t.teardown(() => app.close());
  await app.ready();
  await app.modelsLoaded;
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200, JSON.stringify(ready.json()));
  // The default ensemble and its faster MobileNetV2-only predecessor, kept for CPU-bound lines and rollback.
  t.same(ready.json().models.map((m: any) => m.name).sort(), ['mtd-mnv2', 'mtd-mnv2-incv3']);
  const formats = ['png', 'jpeg', 'webp', 'tiff', 'gif'] as const;
  const files = await Promise.all(formats.map((f, i) => texture(120 + i, 90, f, i + 1)));
  const res = await app.inject({ method: 'POST', url: '/detect?include=heatmap', ...multipart(files.map((data, i) => ({ data, name: `x.${formats[i]}` }))) });
  t.equal(res.statusCode, 200);
  t.same(res.json().results.map((r: any) => r.width), [120, 121, 122, 123, 124]);
  t.same(res.json().model.name, 'mtd-mnv2-incv3', 'a request that names no model gets the default');

  // Real parts from the shared MTD data set, when it is present: a clear defect should outscore good parts on average.
  if (!existsSync(SHARED_MTD)) {
    t.comment(`SKIPPED: ${SHARED_MTD} not present; the real-image check needs the shared MTD data set`);
    return;
  }
  const pick = (dir: string, n: number) => readdirSync(path.join(SHARED_MTD, dir)).sort().slice(0, n).map((f) => readFileSync(path.join(SHARED_MTD, dir, f)));
  const score = async (imgs: Buffer[]) => {
    const r = await app.inject({ method: 'POST', url: '/detect', ...multipart(imgs.map((data) => ({ data }))) });
    t.equal(r.statusCode, 200);
    return r.json().results.map((x: any) => x.score) as number[];
  };
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const good = await score(pick('test/good', 8));
  const blowhole = await score(pick('test/blowhole', 8));
  t.ok(mean(blowhole) > mean(good), `blowhole mean score ${mean(blowhole).toFixed(3)} > good ${mean(good).toFixed(3)}`);
});
