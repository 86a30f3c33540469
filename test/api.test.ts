import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { OPENAPI, operations } from '../src/http/openapi.js';
import { testApp } from './helpers/app.js';
import { editedTiny } from './helpers/fixtures.js';
import { multipart, texture } from './helpers/images.js';
import { checkAgainstSpec } from './helpers/openapi-validator.js';

let app: FastifyInstance;
t.before(async () => {
  app = await testApp({ MAX_FILES: '4', MAX_IMAGE_BYTES: String(200_000), MAX_PIXELS: String(4_000_000) });
});
t.teardown(() => app.close());

/** inject + validation of the response against openapi.yaml, so every test also checks the contract. */
async function call(t: Test, opts: { method: string; url: string; payload?: unknown; headers?: Record<string, string> }): Promise<LightMyRequestResponse> {
  const res = await app.inject(opts as never);
  const problems = checkAgainstSpec(opts.method, opts.url, res);
  t.same(problems, [], `${opts.method} ${opts.url} -> ${res.statusCode} agrees with openapi.yaml`);
  return res;
}

t.test('multipart: one result per image, in order, with verdict and timings', async (t) => {
  const a = await texture(80, 60, 'png', 1);
  const b = await texture(50, 90, 'jpeg', 2);
  const res = await call(t, { method: 'POST', url: '/detect', ...multipart([{ data: a }, { data: b, type: 'image/jpeg' }]) });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.same(body.model, { name: 'tiny', version: '1.0.0' });
  t.equal(body.results.length, 2);
  t.same(body.results.map((r: any) => [r.index, r.width, r.height]), [[0, 80, 60], [1, 50, 90]]);
  for (const r of body.results) {
    t.ok(Number.isFinite(r.score));
    t.ok(r.normalizedScore >= 0 && r.normalizedScore <= 1);
    t.equal(r.isAnomalous, r.score >= r.threshold);
    t.ok(r.timings.total >= r.timings.inference);
  }
});

t.test('JSON base64 input gives the same score as multipart', async (t) => {
  const a = await texture(64, 64, 'png', 5);
  const viaJson = await call(t, { method: 'POST', url: '/detect', payload: { images: [`data:image/png;base64,${a.toString('base64')}`] } });
  const viaForm = await call(t, { method: 'POST', url: '/detect', ...multipart([{ data: a }]) });
  t.equal(viaJson.statusCode, 200);
  t.equal(viaJson.json().results[0].score, viaForm.json().results[0].score);
});

t.test('include: heatmap, overlay and mask PNGs at the original size; regions; paths', async (t) => {
  const a = await texture(70, 40, 'png', 9);
  const res = await call(t, { method: 'POST', url: '/detect?include=heatmap,overlay,mask,regions,paths&sensitivity=1', ...multipart([{ data: a }]) });
  t.equal(res.statusCode, 200);
  const r = res.json().results[0];
  for (const key of ['heatmap', 'overlay', 'mask'] as const) {
    const meta = await sharp(Buffer.from(r[key], 'base64')).metadata();
    t.same([meta.format, meta.width, meta.height], ['png', 70, 40], `${key} is a 70x40 PNG`);
  }
  t.equal((await sharp(Buffer.from(r.mask, 'base64')).metadata()).channels, 1, 'mask is single-channel');
  t.ok(Array.isArray(r.regions));
  t.ok(r.regions.length > 0, 'sensitivity 1 flags everything above the normal median');
  for (const reg of r.regions) {
    t.ok(reg.bbox.x >= 0 && reg.bbox.y >= 0 && reg.bbox.x + reg.bbox.width <= 70 && reg.bbox.y + reg.bbox.height <= 40, 'bbox inside the image');
  }
  const manifestPaths = (await call(t, { method: 'GET', url: '/models' })).json().models[0].paths;
  t.same(r.paths.map((p: any) => p.name), manifestPaths.map((p: any) => p.name));
  t.ok(r.paths.some((p: any) => p.kind === 'layer-wise') && r.paths.some((p: any) => p.kind === 'cross-layer'));
  t.equal((await sharp(Buffer.from(r.paths[0].map, 'base64')).metadata()).format, 'png');
});

t.test('maxSide: the PNGs shrink to it, never grow; scores and regions stay those of the original image', async (t) => {
  const a = await texture(120, 60, 'png', 11);
  const url = (q: string) => `/detect?include=heatmap,overlay,mask,map,regions&sensitivity=1${q}`;
  const full = (await call(t, { method: 'POST', url: url(''), ...multipart([{ data: a }]) })).json().results[0];
  const small = (await call(t, { method: 'POST', url: url('&maxSide=48'), ...multipart([{ data: a }]) })).json().results[0];
  for (const key of ['heatmap', 'overlay', 'mask', 'map'] as const) {
    const meta = await sharp(Buffer.from(small[key], 'base64')).metadata();
    t.same([meta.width, meta.height], [48, 24], `${key} is 48x24 under maxSide=48`);
  }
  t.same([small.width, small.height, small.score, small.regions], [full.width, full.height, full.score, full.regions], 'size, score and regions unchanged');
  const big = (await call(t, { method: 'POST', url: url('&maxSide=4096'), ...multipart([{ data: a }]) })).json().results[0];
  t.same((({ width, height }) => [width, height])(await sharp(Buffer.from(big.heatmap, 'base64')).metadata()), [120, 60], 'a larger maxSide keeps the original size');
  const form = multipart([{ data: a }]);
  const png = await app.inject({ method: 'POST', url: '/detect?maxSide=30', headers: { ...form.headers, accept: 'image/png' }, payload: form.payload } as never);
  t.same((({ width, height }) => [width, height])(await sharp(png.rawPayload).metadata()), [30, 15], 'Accept: image/png follows maxSide');
  for (const bad of ['0', '7', 'abc', '1.5']) {
    const res = await call(t, { method: 'POST', url: `/detect?maxSide=${bad}`, ...multipart([{ data: a }]) });
    t.equal(res.statusCode, 400, `maxSide=${bad} is refused`);
  }
});

t.test('letterbox bundle: outputs at the original size, regions within the image', async (t) => {
  const models = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-letterbox-'));
  t.teardown(() => rm(models, { recursive: true, force: true }));
  await editedTiny(models, (m) => (m.input.fit = 'letterbox'));
  const lb = await testApp({ MODELS_DIR: models });
  t.teardown(() => lb.close());
  const res = await lb.inject({ method: 'POST', url: '/detect?include=heatmap,mask,map,regions&sensitivity=1', ...multipart([{ data: await texture(90, 30, 'png', 4) }]) } as never);
  t.equal(res.statusCode, 200);
  const r = res.json().results[0];
  for (const key of ['heatmap', 'mask', 'map'] as const) {
    const meta = await sharp(Buffer.from(r[key], 'base64')).metadata();
    t.same([meta.width, meta.height], [90, 30], `${key} is 90x30`);
  }
  t.ok(r.regions.length > 0);
  const area = r.regions.reduce((a: number, reg: any) => a + reg.areaPx, 0);
  t.ok(area <= 90 * 30 * 1.001, `regions cover ${area} of the image's 2700 pixels`);
  for (const reg of r.regions) {
    t.ok(reg.bbox.x >= 0 && reg.bbox.y >= 0 && reg.bbox.x + reg.bbox.width <= 90 && reg.bbox.y + reg.bbox.height <= 30, 'bbox inside the image');
  }
});

t.test('include=map: the normalized map as a grey PNG on the calibrated scale', async (t) => {
  const a = await texture(70, 40, 'png', 9);
  // At sensitivity 0.9 a pixel is masked when its normalized value reaches 0.1, i.e. 25.5 in the grey map.
  const r = (await call(t, { method: 'POST', url: '/detect?include=map,mask&sensitivity=0.9', ...multipart([{ data: a }]) })).json().results[0];
  const meta = await sharp(Buffer.from(r.map, 'base64')).metadata();
  t.same([meta.width, meta.height, meta.channels], [70, 40, 1]);
  const data = await sharp(Buffer.from(r.map, 'base64')).extractChannel(0).raw().toBuffer();
  const mask = await sharp(Buffer.from(r.mask, 'base64')).extractChannel(0).raw().toBuffer();
  let agree = 0, set = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) { set++; if (data[i] >= 20) agree++; }
  t.ok(set > 0 && set < mask.length, `${set} of ${mask.length} pixels masked`);
  t.ok(agree >= 0.98 * set, `${agree} of ${set} masked pixels reach the level in the grey map (resampling aside)`);
});

t.test('model card route', async (t) => {
  const card = await call(t, { method: 'GET', url: '/models/tiny/card' });
  t.equal(card.statusCode, 200);
  t.match(card.headers['content-type'], /text\/markdown/);
  t.match(card.body, /^# tiny/);
  const missing = await call(t, { method: 'GET', url: '/models/nope/card' });
  t.same([missing.statusCode, missing.json().code], [404, 'UNKNOWN_MODEL']);
  const page = await call(t, { method: 'GET', url: '/' });
  t.match(page.body, /<title>mixdistill/);
});

t.test('threshold and sensitivity overrides', async (t) => {
  const form = multipart([{ data: await texture(64, 64) }]);
  const low = (await call(t, { method: 'POST', url: '/detect?threshold=-1000', ...form })).json().results[0];
  t.equal(low.threshold, -1000);
  t.equal(low.isAnomalous, true);
  const strict = (await call(t, { method: 'POST', url: '/detect?sensitivity=0', ...form })).json().results[0];
  const lax = (await call(t, { method: 'POST', url: '/detect?sensitivity=1', ...form })).json().results[0];
  t.ok(strict.threshold > lax.threshold, 'higher sensitivity lowers the threshold');
  const both = await call(t, { method: 'POST', url: '/detect?sensitivity=0.5&threshold=1', ...form });
  t.equal(both.statusCode, 400);
});

t.test('Accept: image/png returns the heatmap itself', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/detect', ...multipart([{ data: await texture(33, 21) }]), headers: { ...multipart([{ data: await texture(33, 21) }]).headers, accept: 'image/png' } });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'image/png');
  t.ok(Number.isFinite(Number(res.headers['x-anomaly-score'])));
  t.same([(await sharp(res.rawPayload).metadata()).width, (await sharp(res.rawPayload).metadata()).height], [33, 21]);
  const two = multipart([{ data: await texture(20, 20) }, { data: await texture(20, 20) }]);
  const refused = await call(t, { method: 'POST', url: '/detect', payload: two.payload, headers: { ...two.headers, accept: 'image/png' } });
  t.equal(refused.statusCode, 406);
  t.equal(refused.json().code, 'NOT_ACCEPTABLE');
});

t.test('every error has its status and stable code', async (t) => {
  const png = await texture(32, 32);
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  const bomb = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: '#808080' } }).png().toBuffer();
  const cases: [string, { method: string; url: string; payload?: unknown; headers?: Record<string, string> }, number, string][] = [
    ['no image', { method: 'POST', url: '/detect', payload: { images: [] } }, 400, 'INVALID_REQUEST'],
    ['empty multipart', { method: 'POST', url: '/detect', ...multipart([]) }, 400, 'NO_IMAGE'],
    ['empty file', { method: 'POST', url: '/detect', ...multipart([{ data: Buffer.alloc(0) }]) }, 400, 'EMPTY_IMAGE'],
    ['bad base64', { method: 'POST', url: '/detect', payload: { images: ['not base64!'] } }, 400, 'INVALID_BASE64'],
    ['wrong field', { method: 'POST', url: '/detect', ...multipart([{ field: 'file', data: png }]) }, 400, 'UNEXPECTED_FIELD'],
    ['text as image', { method: 'POST', url: '/detect', ...multipart([{ data: Buffer.from('hello, this is text') }]) }, 415, 'NOT_AN_IMAGE'],
    ['svg', { method: 'POST', url: '/detect', ...multipart([{ data: svg, type: 'image/svg+xml' }]) }, 415, 'UNSUPPORTED_IMAGE_TYPE'],
    ['truncated png', { method: 'POST', url: '/detect', ...multipart([{ data: png.subarray(0, png.length >> 1) }]) }, 422, 'CORRUPT_IMAGE'],
    ['too many pixels', { method: 'POST', url: '/detect', ...multipart([{ data: bomb }]) }, 413, 'TOO_MANY_PIXELS'],
    ['too many bytes', { method: 'POST', url: '/detect', ...multipart([{ data: Buffer.alloc(300_000, 1) }]) }, 413, 'TOO_MANY_BYTES'],
    ['too many files', { method: 'POST', url: '/detect', ...multipart(Array(5).fill({ data: png })) }, 413, 'TOO_MANY_FILES'],
    ['too many json images', { method: 'POST', url: '/detect', payload: { images: Array(5).fill(png.toString('base64')) } }, 413, 'TOO_MANY_FILES'],
    ['unknown model', { method: 'POST', url: '/detect?model=nope', ...multipart([{ data: png }]) }, 404, 'UNKNOWN_MODEL'],
    ['path traversal', { method: 'POST', url: '/detect?model=..%2F..%2Fetc', ...multipart([{ data: png }]) }, 400, 'INVALID_REQUEST'],
    ['unknown parameter', { method: 'POST', url: '/detect?treshold=1', ...multipart([{ data: png }]) }, 400, 'INVALID_REQUEST'],
    ['bad include', { method: 'POST', url: '/detect?include=everything', ...multipart([{ data: png }]) }, 400, 'INVALID_REQUEST'],
    ['wrong content type', { method: 'POST', url: '/detect', payload: png, headers: { 'content-type': 'image/png' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['invalid json', { method: 'POST', url: '/detect', payload: '{"images": [', headers: { 'content-type': 'application/json' } }, 400, 'INVALID_REQUEST'],
  ];
  for (const [name, req, status, code] of cases) {
    const res = await call(t, req);
    t.equal(res.statusCode, status, `${name}: status`);
    t.equal(res.json().code, code, `${name}: code (${res.json().message})`);
  }
  const after = await call(t, { method: 'POST', url: '/detect', ...multipart([{ data: png }]) });
  t.equal(after.statusCode, 200, 'still serving after the bad requests');
});

t.test('ops endpoints and models', async (t) => {
  t.same((await call(t, { method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
  const ready = await call(t, { method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  const m = ready.json().models.find((x: any) => x.name === 'tiny');
  t.equal(m.state, 'ready');
  t.equal(m.provider, 'cpu');
  t.ok(m.warmupMs > 0);
  const models = (await call(t, { method: 'GET', url: '/models' })).json();
  t.equal(models.defaultModel, 'tiny');
  t.match(models.models[0].card, /test fixture/);
  const metrics = await call(t, { method: 'GET', url: '/metrics' });
  for (const name of ['mixdistill_http_requests_total', 'mixdistill_stage_duration_seconds_bucket', 'mixdistill_batch_size_bucket', 'mixdistill_queue_depth', 'mixdistill_requests_in_progress', 'mixdistill_anomaly_score_normalized_bucket', 'process_resident_memory_bytes']) {
    t.match(metrics.body, new RegExp(`^${name}`, 'm'), `metric ${name}`);
  }
  t.match(metrics.body, /mixdistill_model_info\{model="tiny",version="1.0.0",provider="cpu"\} 1/);
  for (const stage of ['decode', 'preprocess', 'queue', 'inference', 'postprocess', 'encode']) {
    t.match(metrics.body, new RegExp(`mixdistill_stage_duration_seconds_count\\{model="tiny",stage="${stage}"\\} [1-9]`), `stage ${stage} observed`);
  }
  const spec = await call(t, { method: 'GET', url: '/openapi.yaml' });
  t.match(spec.body, /^openapi: 3\.1/);
  const docs = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200);
  const missing = await app.inject({ method: 'GET', url: '/nowhere' });
  t.same([missing.statusCode, missing.json().code], [404, 'NOT_FOUND']);
});

t.test('every route is in openapi.yaml and every operation is a route', async (t) => {
  // printRoutes draws the radix tree: each line is a segment (4 columns of indent a level), optionally with methods.
  const routes = new Set<string>();
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = line.match(/^([│├└─ ]*)(\S+?)(?: \(([A-Z, ]+)\))?$/);
    if (!m) continue;
    const depth = m[1].length / 4;
    stack.length = depth;
    stack[depth] = m[2];
    if (m[3]) for (const method of m[3].split(', ')) if (method !== 'HEAD') routes.add(`${method} ${stack.join('')}`);
  }
  // The documentation UI's and the page's static assets are not API routes (@fastify/static 10 serves
  // /ui/ through a root wildcard and matches its prefix itself; other paths still get our 404).
  const api = [...routes].filter((r) => !/ \/(docs|ui)(\/|$)/.test(r) && r !== 'GET /*').map((r) => r.replace(/:(\w+)/g, '{$1}')).sort();
  const spec = operations().map((o) => `${o.method.toUpperCase()} ${o.path}`).sort();
  t.same(api, spec);
  t.ok(Object.keys(OPENAPI.paths).length > 0);
});
