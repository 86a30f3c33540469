import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { writeHostProbeBundle } from '../src/bench/host-probe.js';
import { loadBundle } from '../src/bundle/load.js';
import { configFrom } from '../src/config.js';
import { detectImage } from '../src/detect/detect.js';
import { ModelEngine } from '../src/engine/model-engine.js';
import { fromRoot } from '../src/paths.js';

t.test('the host probe bundle loads, keeps the real bundle\'s geometry, and its path map is 1 - cos of the pooled pixels', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'probe-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const like = (await loadBundle(fromRoot('test', 'fixtures', 'bundles', 'tiny'))).manifest;
  const bundle = await loadBundle(await writeHostProbeBundle(like, dir));
  t.same(bundle.manifest.input, like.input);
  t.same({ sigma: bundle.manifest.fusion.sigma, reduction: bundle.manifest.fusion.reduction }, { sigma: like.fusion.sigma, reduction: like.fusion.reduction });

  const engine = await ModelEngine.create(bundle, { providers: ['cpu'], workers: 1, intraOpThreads: 1, maxBatch: 2, maxWaitMs: 0, maxQueue: 8 });
  t.teardown(() => engine.close());
  const [r, g, b] = [200, 100, 50];
  const png = await sharp({ create: { width: 96, height: 72, channels: 3, background: { r, g, b } } }).png().toBuffer();
  const res = await detectImage(engine, png, 0, { include: new Set(['paths', 'heatmap']) }, { maxPixels: configFrom({}).MAX_PIXELS });
  // Computed here from the probe's definition: teacher = pooled pixels x, student = x tinted by (1, 1.25, 0.8).
  const x = [r, g, b].map((v) => v * like.input.scaling.scale);
  const w = [1, 1.25, 0.8];
  const dot = x.reduce((a, v, i) => a + v * v * w[i], 0);
  const expected = 1 - dot / (Math.hypot(...x) * Math.hypot(...x.map((v, i) => v * w[i])));
  t.equal(res.paths!.length, 1);
  t.ok(Math.abs(res.paths![0].max - expected) < 1e-4, `path max ${res.paths![0].max} = 1 - cos ${expected.toFixed(5)}`);
  t.ok(res.heatmap && res.heatmap.length > 0, 'a heatmap PNG comes back');
  t.same([res.width, res.height], [96, 72]);
});

t.test('the probe refuses an input it cannot pool exactly', async (t) => {
  const like = (await loadBundle(fromRoot('test', 'fixtures', 'bundles', 'tiny'))).manifest;
  await t.rejects(writeHostProbeBundle({ ...like, input: { ...like.input, width: 60 } }, os.tmpdir(), 'never-written'), /divisible by 8/);
});
