import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import t from 'tap';
import { buildApp } from '../src/app.js';
import { configFrom } from '../src/config.js';
import { fromRoot } from '../src/paths.js';
import { DEFAULT_MODELS_DIR, noise, SHARED_MTD } from './helpers/fixtures.js';
import { texture } from './helpers/images.js';

const CHROMIUM = '/usr/bin/chromium';
const DEFAULT_MODEL = configFrom({}).DEFAULT_MODEL;
const OUT = fromRoot('out', 'test', 'web');

t.test('the page scores an upload like the API does, and the sensitivity slider re-draws the verdict', { skip: existsSync(CHROMIUM) ? false : `SKIPPED: ${CHROMIUM} is not installed (apt-get install chromium)` }, async (t) => {
  const app = await buildApp({ config: configFrom({ MODELS_DIR: DEFAULT_MODELS_DIR, EXECUTION_PROVIDERS: 'cpu', MAX_EVENT_LOOP_DELAY_MS: '0' }) });
  t.teardown(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  await app.modelsLoaded;

  // A real good part when the shared data set is there, else a fine-grained grey noise texture that the default
  // scores below saturation (normalized ≈ 0.84 with mtd-mnv2-incv3 2.0.0), so the slider can flip its verdict. A flat grey plate or coarser
  // noise saturates the scale (the InceptionV3 member finds them far from any tile), and no sensitivity flips that.
  const goodDir = path.join(SHARED_MTD, 'test', 'good');
  const bytes = existsSync(goodDir)
    ? await readFile(path.join(goodDir, readdirSync(goodDir).sort()[0]))
    : await sharp(Buffer.from(Uint8Array.from(noise(300 * 240, 1, 255))), { raw: { width: 300, height: 240, channels: 1 } }).blur(0.8).png().toBuffer();
  const file = path.join(os.tmpdir(), `mixdistill-web-${process.pid}.png`);
  await writeFile(file, bytes);
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'part.png');
  const api = (await (await fetch(`${base}/detect`, { method: 'POST', body: form })).json()).results[0];

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  // Playwright's waits are conditions; 30 s is their default bound, short for a default-model detection on a loaded machine.
  page.setDefaultTimeout(180_000);
  const problems: string[] = [];
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

  await page.goto(base);
  await page.waitForFunction(() => (document.querySelector('#model') as HTMLSelectElement | null)?.options.length);
  t.equal(await page.locator('#model').inputValue(), DEFAULT_MODEL);
  t.equal(await page.locator('#card-link').getAttribute('href'), `/models/${DEFAULT_MODEL}/card`);
  await page.setInputFiles('#files', file);
  const verdict = page.locator('[data-testid=verdict]');
  await verdict.waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid=verdict]')?.textContent);

  t.equal(await page.locator('[data-testid=score]').textContent(), api.score.toFixed(5), 'score as the API gives it');
  const before = await verdict.textContent();
  t.equal(before, api.isAnomalous ? 'anomalous' : 'normal', 'verdict as the API gives it');
  t.ok(!api.isAnomalous || api.normalizedScore < 1, 'the test image is one the slider can flip (normalized score below 1)');
  const manifest = JSON.parse(readFileSync(path.join(DEFAULT_MODELS_DIR, DEFAULT_MODEL, 'manifest.json'), 'utf8'));
  t.equal(await page.locator('.paths figure').count(), manifest.student.outputs.length, 'one map per distillation path');
  const canvas = await page.locator('canvas').boundingBox();
  t.ok(canvas && canvas.width > 100 && canvas.height > 50, 'the image is drawn');

  // Sensitivity 1 flags every image (normalized >= 0); 0 flags only saturated ones.
  await page.locator('#sensitivity').fill(before === 'normal' ? '1' : '0');
  await page.waitForFunction((b) => document.querySelector('[data-testid=verdict]')?.textContent !== b, before, { timeout: 30_000 }).catch(() => undefined);
  const after = await verdict.textContent();
  t.not(after, before, `moving the slider turned the verdict from ${before} to ${after}`);
  if (before === 'normal') t.ok(Number(await page.locator('[data-testid=regions]').textContent()) > 0, 'regions outlined at full sensitivity');

  await mkdir(OUT, { recursive: true });
  const shot = path.join(OUT, 'page.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.comment(`screenshot: ${shot}`);

  // An API error is shown as the API's message.
  const bad = path.join(os.tmpdir(), `mixdistill-web-${process.pid}.txt.png`);
  await writeFile(bad, 'not an image');
  await page.setInputFiles('#files', bad);
  await page.locator('#error').waitFor({ state: 'visible' });
  t.match(await page.locator('#error').textContent(), /NOT_AN_IMAGE/);
  t.same(problems.filter((p) => !/415/.test(p)), [], 'no console errors or page errors (the 415 of the bad upload aside)');
});

t.test('with API keys the page asks for one and then works like /detect', { skip: existsSync(CHROMIUM) ? false : `SKIPPED: ${CHROMIUM} is not installed` }, async (t) => {
  const key = 'page-test-key-0123456789';
  const app = await buildApp({ config: configFrom({ MODELS_DIR: DEFAULT_MODELS_DIR, EXECUTION_PROVIDERS: 'cpu', API_KEYS: key, MAX_EVENT_LOOP_DELAY_MS: '0' }) });
  t.teardown(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  await app.modelsLoaded;
  const file = path.join(os.tmpdir(), `mixdistill-web-key-${process.pid}.png`);
  await writeFile(file, await texture(200, 150, 'png'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(180_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(base);
  await page.locator('#auth').waitFor({ state: 'visible' });
  await page.locator('#api-key').fill(key);
  await page.locator('#auth button').click();
  await page.waitForFunction(() => (document.querySelector('#model') as HTMLSelectElement | null)?.options.length);
  await page.setInputFiles('#files', file);
  await page.waitForFunction(() => document.querySelector('[data-testid=verdict]')?.textContent);
  t.match(await page.locator('[data-testid=verdict]').textContent(), /^(normal|anomalous)$/);
  t.same(pageErrors, []);
});
