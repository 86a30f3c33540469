/**
 * npm run bench [-- --json out/bench.json] [--model mtd-mnv2-incv3 [--model other ...]] [--seconds 8] [--run runs/<run> for the PyTorch reference, once per ensemble member]
 *
 * One run, one machine, for each --model in turn: images/s and p50/p95/p99 latency of
 *   1. bare onnxruntime session.run on the composed graph, at every batch size the engine may run (1, 2, 4, ... MAX_BATCH),
 *   2. the in-process engine (decode + preprocess + inference + postprocess), without and with heatmap PNGs,
 *   3. the HTTP service (a child process) under autocannon at several concurrencies, /healthz timed meanwhile,
 *   4. the PyTorch reference, eager and TorchScript-frozen (where Debian's torch and the run folder exist),
 *   5. the host path's CPU cost: the server's CPU time per image (process_cpu_seconds_total from its /metrics)
 *      against a probe bundle with this model's input whose session costs next to nothing (src/bench/host-probe.ts),
 *      scores only and with a heatmap PNG, split by stage and, on Linux, by thread (src/bench/thread-cpu.ts),
 * and the ratios httpOverSession (HTTP at saturation over the best bare session throughput at any of those batch
 * sizes) and sessionOverTorchscript, hostCpuMsPerImage, /healthz p99 under load and the server's peak RSS.
 * With several --model, each one's cost relative to the first, from figures of this one run: the machines are
 * shared, and two runs minutes apart can differ by a factor of two.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadBundle, type Bundle } from '../bundle/load.js';
import { loadConfig } from '../config.js';
import { detectImage, type Include } from '../detect/detect.js';
import { tileCount } from '../detect/tiled.js';
import { writeHostProbeBundle } from '../bench/host-probe.js';
import { measureHostStages } from '../bench/host-stages.js';
import { cpuMsByGroup, threadTicks } from '../bench/thread-cpu.js';
import { batchSizes, ModelEngine } from '../engine/model-engine.js';
import { composeBundle } from '../graph/compose.js';
import { PIXELS_INPUT } from '../graph/preprocess.js';
import { fromRoot } from '../paths.js';
import { parseCli } from './args.js';
import { multipartImage, startServer } from './server-process.js';

const values = parseCli(
  {
    model: { type: 'string', multiple: true },
    json: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    run: { type: 'string', multiple: true }, // an ensemble bundle: each member's run, in export order
    concurrency: { type: 'string', default: '1,4,16,32' },
    image: { type: 'string' },
  },
  'usage: npm run bench [-- --model mtd-mnv2-incv3 [--model mtd-mnv2 ...]] [--seconds 8] [--concurrency 1,4,16,32] [--json out/bench.json] [--run runs/<run> ...] [--image FILE]\n'
    + '  several --model: each measured in turn, then its cost relative to the first; --run is the first model\'s run(s); --image: the image sent (default: a good MTD part)',
);
const config = loadConfig({ ...process.env, EXECUTION_PROVIDERS: process.env.EXECUTION_PROVIDERS ?? 'cpu' });
const seconds = Number(values.seconds);
const maxBatch = config.MAX_BATCH;
const models = values.model?.length ? values.model : [config.DEFAULT_MODEL];
const bundleDirOf = (model: string) => (existsSync(model) ? model : path.join(config.MODELS_DIR, model));

interface Stats { imagesPerSecond: number; p50: number; p95: number; p99: number; n: number }
function stats(latMs: number[], images: number, wallMs: number): Stats {
  const s = [...latMs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { imagesPerSecond: (1000 * images) / wallMs, p50: q(0.5), p95: q(0.95), p99: q(0.99), n: s.length };
}
const fmt = (s: Stats) => `${s.imagesPerSecond.toFixed(1)} img/s, p50 ${s.p50.toFixed(1)} ms, p95 ${s.p95.toFixed(1)}, p99 ${s.p99.toFixed(1)}`;
const log = (msg: string) => console.error(msg);

// A real part from the shared MTD data set when present, else a generated texture of similar size.
const sharedGood = fromRoot('..', 'shared', 'datasets', 'mtd', 'magnetic_tile', 'test', 'good');
const image = values.image
  ? await readFile(values.image)
  : existsSync(sharedGood)
  ? await readFile(path.join(sharedGood, readdirSync(sharedGood).sort()[0]))
  : await sharp({ create: { width: 512, height: 320, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).png().toBuffer();
const imageMeta = await sharp(image).metadata();

// 1. bare session
async function bareSession(bundle: Bundle, batch: number): Promise<Stats> {
  const m = bundle.manifest;
  const session = await ort.InferenceSession.create(composeBundle(bundle), { executionProviders: config.EXECUTION_PROVIDERS, intraOpNumThreads: config.INTRA_OP_THREADS, graphOptimizationLevel: 'all' });
  const x = new ort.Tensor('uint8', new Uint8Array(batch * m.input.height * m.input.width * 3).fill(128), [batch, m.input.height, m.input.width, 3]);
  await session.run({ [PIXELS_INPUT]: x });
  const lat: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const t = performance.now();
    await session.run({ [PIXELS_INPUT]: x });
    lat.push(performance.now() - t);
  }
  const wall = performance.now() - t0;
  await session.release();
  return stats(lat, lat.length * batch, wall);
}

// 2. in-process engine, saturated by `inflight` concurrent images
async function engineRun(bundle: Bundle, include: Include[], inflight: number): Promise<Stats> {
  const engine = await ModelEngine.create(bundle, { providers: config.EXECUTION_PROVIDERS, workers: config.WORKERS, intraOpThreads: config.INTRA_OP_THREADS, intraOpSpinning: config.INTRA_OP_SPINNING === 'on', maxBatch, batchTuning: config.BATCH_TUNING === 'warmup', maxWaitMs: config.BATCH_WAIT_MS, maxQueue: 1 << 16 });
  if (!include.length) log(`  engine batches up to ${engine.status.maxBatch} (BATCH_TUNING=${config.BATCH_TUNING}; warm-up timings per image: ${engine.status.batchTimings.map((b) => `${b.batch}: ${b.msPerImage.toFixed(1)} ms`).join(', ') || 'none'})`);
  const lat: number[] = [];
  const inc = new Set(include);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (performance.now() - t0 < seconds * 1000) {
      const t = performance.now();
      await detectImage(engine, image, 0, { include: inc }, { maxPixels: config.MAX_PIXELS });
      lat.push(performance.now() - t);
    }
  }));
  const wall = performance.now() - t0;
  await engine.close();
  return stats(lat, lat.length, wall);
}

// 3. HTTP service in a child process
async function httpRuns(bundleDir: string, name: string, concurrencies: number[]) {
  const server = await startServer({ MODELS_DIR: path.dirname(path.resolve(bundleDir)), DEFAULT_MODEL: name, LOG_LEVEL: 'warn', EXECUTION_PROVIDERS: config.EXECUTION_PROVIDERS.join(','), QUEUE_SIZE: '4096' });
  const url = server.url;
  const { body, contentType } = multipartImage(image);
  const results: { concurrency: number; stats: Stats; errors: number; non2xx: number; healthz: Stats; loadGeneratorCpuMsPerRequest: number }[] = [];
  for (const c of concurrencies) {
    const health: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t = performance.now();
        await fetch(`${url}/healthz`);
        health.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    // autocannon runs in this process: its CPU is the load generator's, taken from the same two cores as the server's.
    const cpu0 = process.cpuUsage();
    const r = await autocannon({ url: `${url}/detect`, method: 'POST', body, headers: { 'content-type': contentType }, connections: c, duration: seconds });
    const cpu = process.cpuUsage(cpu0);
    probing = false;
    await probe;
    const lat = r.latency as unknown as Record<string, number>;
    results.push({
      concurrency: c,
      stats: { imagesPerSecond: r.requests.average, p50: lat.p50, p95: lat.p97_5, p99: lat.p99, n: r.requests.total },
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      healthz: stats(health, health.length, 1),
      loadGeneratorCpuMsPerRequest: (cpu.user + cpu.system) / 1000 / Math.max(1, r.requests.total),
    });
    log(`  HTTP c=${c}: ${fmt(results.at(-1)!.stats)} (p95 column is autocannon's p97.5), non-2xx ${r.non2xx}, /healthz p99 ${results.at(-1)!.healthz.p99.toFixed(1)} ms, load generator ${results.at(-1)!.loadGeneratorCpuMsPerRequest.toFixed(2)} CPU-ms a request`);
  }
  const peakRssMiB = await server.rssMiB('VmHWM');
  await server.stop();
  return { results, peakRssMiB };
}

// 5. the host path's CPU per image
const HOST_TARGETS_MS = { scoresOnly: 2, withHeatmap: 6 };
async function serverCpuSeconds(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const v = text.match(/^process_cpu_seconds_total (\S+)$/m)?.[1];
  if (v === undefined) throw new Error('the server\'s /metrics has no process_cpu_seconds_total');
  return Number(v);
}
async function hostCost(bundle: Bundle) {
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'mixdistill-host-probe-'));
  try {
    const name = 'host-probe';
    await writeHostProbeBundle(bundle.manifest, modelsDir, name);
    // One intra-op thread: a pool of ORT threads would spin between runs and bill its waiting as CPU.
    const server = await startServer({ MODELS_DIR: modelsDir, DEFAULT_MODEL: name, LOG_LEVEL: 'warn', EXECUTION_PROVIDERS: 'cpu', INTRA_OP_THREADS: '1', QUEUE_SIZE: '4096' });
    const { body, contentType } = multipartImage(image);
    const amount = Math.max(200, Math.round(seconds * 50));
    const measure = async (query: string) => {
      const shoot = (n: number) => autocannon({ url: `${server.url}/detect${query}`, method: 'POST', body, headers: { 'content-type': contentType }, connections: 4, amount: n });
      await shoot(50);
      const pid = server.process.pid!;
      const [cpu0, threads0] = [await serverCpuSeconds(server.url), await threadTicks(pid)];
      const r = await shoot(amount);
      const cpuMs = ((await serverCpuSeconds(server.url)) - cpu0) * 1000;
      const threads1 = await threadTicks(pid);
      if (r.non2xx || r.errors || r.timeouts) throw new Error(`host probe: ${r.non2xx} non-2xx, ${r.errors + r.timeouts} errors of ${amount}`);
      return { cpu: cpuMs / amount, byThread: threads0 && threads1 ? cpuMsByGroup(threads0, threads1, pid, amount) : undefined };
    };
    let scores, heat;
    try {
      scores = await measure('');
      heat = await measure('?include=heatmap');
    } finally {
      await server.stop();
    }
    const result = { scoresOnly: scores.cpu, withHeatmap: heat.cpu };
    const byThread = { scoresOnly: scores.byThread, withHeatmap: heat.byThread };
    // The event loop's share: one per process, it caps a process at 1000 / (its ms per image) whatever the cores.
    const mainThreadMsPerImage = { scoresOnly: scores.byThread?.main, withHeatmap: heat.byThread?.main };
    // Where it goes: each stage alone, with the server stopped. The rest (multipart, routing, batching, messages to
    // the worker, JSON, base64) is what the server spent beyond these.
    const stages = await measureHostStages(image, await loadBundle(path.join(modelsDir, name)));
    const measured = stages.decodeMs + stages.resizeMs + stages.probeSessionMs;
    const breakdown = {
      ...stages,
      restScoresOnlyMs: result.scoresOnly - measured,
      restWithHeatmapMs: result.withHeatmap - measured - stages.heatmapColourMs - stages.heatmapPngMs,
    };
    // Outside session.run, as the targets count it: the server's CPU less the probe's session (which now holds the
    // preprocessing; on a GPU node that runs on the device).
    return {
      scoresOnly: result.scoresOnly - stages.probeSessionMs,
      withHeatmap: result.withHeatmap - stages.probeSessionMs,
      serverCpuMsPerImage: result,
      mainThreadMsPerImage,
      byThreadMsPerImage: byThread,
      probeSessionMsPerImage: stages.probeSessionMs,
      breakdown,
      requestsPerFigure: amount,
    };
  } finally {
    await rm(modelsDir, { recursive: true, force: true });
  }
}

// 4. PyTorch reference
function torchReference(bundleDir: string, runs: string[]): { eager: Stats[]; torchscript: Stats[] } | { skipped: string } {
  if (!runs.length || !runs.every((run) => existsSync(path.join(run, 'config.json')))) {
    return { skipped: 'no --run folder given (the training run the bundle was exported from; one --run per member of an ensemble)' };
  }
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { skipped: "Debian's python3-torch is not installed" };
  const r = spawnSync('/usr/bin/python3', ['-m', 'mixdistill.bench_torch', ...runs.flatMap((run) => ['--run', run]), '--bundle', bundleDir, '--batches', `1,${maxBatch}`, '--seconds', String(seconds)], {
    encoding: 'utf8', env: { ...process.env, PYTHONPATH: fromRoot('models', 'pipeline') }, maxBuffer: 1 << 24,
  });
  if (r.status !== 0) return { skipped: `the PyTorch reference failed: ${r.stderr.split('\n').slice(-3).join(' ')}` };
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const conv = (x: any): Stats => ({ imagesPerSecond: x.imagesPerSecond, p50: x.p50Ms, p95: NaN, p99: NaN, n: x.runs });
  return { eager: out.eager.map(conv), torchscript: out.torchscript.map(conv) };
}

async function benchModel(bundleDir: string, bundle: Bundle, runs: string[]) {
  const m = bundle.manifest;
  // A tiled bundle runs the session once per tile: session figures count tiles, the engine's and HTTP's images.
  const tilesPerImage = m.input.fit === 'tile' ? tileCount(m, imageMeta.width!, imageMeta.height!) : 1;
  log(`bench: ${m.name} ${m.version}, ${m.input.width}x${m.input.height}${tilesPerImage > 1 ? ` tiles, ${tilesPerImage} an image (session figures per tile)` : ''}, image ${imageMeta.width}x${imageMeta.height}, providers ${config.EXECUTION_PROVIDERS.join(',')}, ${seconds} s per measurement, MAX_BATCH ${maxBatch}`);
  const sessions: Record<string, Stats> = {};
  for (const b of batchSizes(maxBatch)) {
    sessions[`batch${b}`] = await bareSession(bundle, b);
    log(`  session batch ${b}: ${fmt(sessions[`batch${b}`])}${b > 1 ? ' (latency per batch)' : ''}`);
  }
  const [bestSessionKey, bestSession] = Object.entries(sessions).reduce((a, b) => (b[1].imagesPerSecond > a[1].imagesPerSecond ? b : a));
  const engineBare = await engineRun(bundle, [], maxBatch * 2);
  log(`  engine, scores only: ${fmt(engineBare)}`);
  const engineHeat = await engineRun(bundle, ['heatmap'], maxBatch * 2);
  log(`  engine, with heatmap PNG: ${fmt(engineHeat)}`);
  const http = await httpRuns(bundleDir, m.name, values.concurrency!.split(',').map(Number));
  const host = await hostCost(bundle);
  const perCore = (ms: number) => 1000 / ms;
  log(`  host CPU per image outside session.run (probe bundle, ${host.requestsPerFigure} requests each): scores only ${host.scoresOnly.toFixed(2)} ms (target <= ${HOST_TARGETS_MS.scoresOnly}), with heatmap PNG ${host.withHeatmap.toFixed(2)} ms (target <= ${HOST_TARGETS_MS.withHeatmap}); the server's whole CPU ${host.serverCpuMsPerImage.scoresOnly.toFixed(2)} / ${host.serverCpuMsPerImage.withHeatmap.toFixed(2)} ms, of which the probe's session (preprocessing and head in the graph) ${host.probeSessionMsPerImage.toFixed(2)}`);
  log(`  where it goes (CPU-ms per image, each stage alone): ${Object.entries(host.breakdown).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v.toFixed(2)}`).join(', ')}`);
  const bt = host.byThreadMsPerImage;
  const threads = (g?: Record<string, number>) => (g ? Object.entries(g).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') : 'n/a (no /proc)');
  log(`  by thread (CPU-ms per image; inference = the probe's session and its worker's messages, libvips = pixel work, other = libuv's pool running sharp's calls and V8's GC/compiler): scores only ${threads(bt.scoresOnly)}; with heatmap ${threads(bt.withHeatmap)}`);
  const mt = host.mainThreadMsPerImage;
  const feed = (ms: number, mainMs: number | undefined) => Math.min(16 * perCore(ms), mainMs ? perCore(mainMs) : Infinity);
  log(`  so, the session on a device, one core feeds ${perCore(host.scoresOnly).toFixed(0)} img/s scores only, ${perCore(host.withHeatmap).toFixed(0)} with heatmaps; the main thread spends ${mt.scoresOnly?.toFixed(2) ?? '?'} / ${mt.withHeatmap?.toFixed(2) ?? '?'} ms an image, which caps one process at ${mt.scoresOnly ? perCore(mt.scoresOnly).toFixed(0) : '?'} / ${mt.withHeatmap ? perCore(mt.withHeatmap).toFixed(0) : '?'} img/s; a 16-core node, one process: ${feed(host.scoresOnly, mt.scoresOnly).toFixed(0)} / ${feed(host.withHeatmap, mt.withHeatmap).toFixed(0)} img/s`);
  const torch = torchReference(bundleDir, runs);
  if ('skipped' in torch) log(`  PyTorch reference SKIPPED: ${torch.skipped}`);
  else log(`  PyTorch eager: ${torch.eager.map((s) => s.imagesPerSecond.toFixed(1)).join(' / ')} img/s; TorchScript frozen: ${torch.torchscript.map((s) => s.imagesPerSecond.toFixed(1)).join(' / ')} img/s (batch 1 / ${maxBatch})`);

  const saturated = http.results.reduce((a, b) => (b.stats.imagesPerSecond > a.stats.imagesPerSecond ? b : a));
  const httpOverSession = (saturated.stats.imagesPerSecond * tilesPerImage) / bestSession.imagesPerSecond;
  const httpP99OverP50AtSaturation = saturated.stats.p99 / saturated.stats.p50;
  const healthzP99UnderLoadMs = Math.max(...http.results.map((r) => r.healthz.p99));
  const bestTs = 'skipped' in torch ? undefined : Math.max(...torch.torchscript.map((s) => s.imagesPerSecond));
  const report = {
    model: { name: m.name, version: m.version },
    machine: { cpus: os.availableParallelism(), providers: config.EXECUTION_PROVIDERS, workers: config.WORKERS, intraOpThreads: config.INTRA_OP_THREADS, intraOpSpinning: config.INTRA_OP_SPINNING, maxBatch },
    image: { width: imageMeta.width, height: imageMeta.height },
    tilesPerImage,
    session: sessions,
    bestSessionBatch: Number(bestSessionKey.slice('batch'.length)),
    engine: { scoresOnly: engineBare, withHeatmap: engineHeat },
    http: http.results,
    torch,
    ratios: {
      httpOverSession,
      sessionOverTorchscript: bestTs ? bestSession.imagesPerSecond / bestTs : null,
      httpP99OverP50AtSaturation,
    },
    hostCpuMsPerImage: host,
    targets: {
      httpOverSession: { target: '>= 0.9', met: httpOverSession >= 0.9 },
      hostCpuMsScoresOnly: { target: `<= ${HOST_TARGETS_MS.scoresOnly}`, met: host.scoresOnly <= HOST_TARGETS_MS.scoresOnly },
      hostCpuMsWithHeatmap: { target: `<= ${HOST_TARGETS_MS.withHeatmap}`, met: host.withHeatmap <= HOST_TARGETS_MS.withHeatmap },
      httpP99OverP50: { target: '<= 2', met: httpP99OverP50AtSaturation <= 2 },
      healthzP99UnderLoadMs: { target: '< 50', met: healthzP99UnderLoadMs < 50 },
    },
    saturationConcurrency: saturated.concurrency,
    healthzP99UnderLoadMs,
    serverPeakRssMiB: http.peakRssMiB,
    benchPeakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify({ ...report.ratios, hostCpuMsPerImage: report.hostCpuMsPerImage }));
  console.log(`${m.name} ${m.version}: httpOverSession ${report.ratios.httpOverSession.toFixed(2)} (HTTP at c=${saturated.concurrency} over the best bare session, batch ${report.bestSessionBatch}); hostCpuMsPerImage ${host.scoresOnly.toFixed(2)} scores only, ${host.withHeatmap.toFixed(2)} with heatmap; sessionOverTorchscript ${report.ratios.sessionOverTorchscript?.toFixed(2) ?? 'n/a'}; p99/p50 at saturation ${report.ratios.httpP99OverP50AtSaturation.toFixed(2)}; /healthz p99 under load ${report.healthzP99UnderLoadMs.toFixed(1)} ms; server peak RSS ${report.serverPeakRssMiB.toFixed(0)} MiB`);
  const missed = Object.entries(report.targets).filter(([, t]) => !t.met).map(([k, t]) => `${k} (${t.target})`);
  console.log(`targets: ${missed.length ? `missed ${missed.join(', ')}` : 'all met'}`);
  return report;
}
type Report = Awaited<ReturnType<typeof benchModel>>;

/** How many times the first model's throughput each figure of `other` is (above 1: `other` is slower). */
function costRelativeTo(first: Report, other: Report) {
  const rate = (r: Report) => ({
    sessionBatch1: r.session.batch1.imagesPerSecond,
    sessionBest: r.session[`batch${r.bestSessionBatch}`].imagesPerSecond,
    engineScoresOnly: r.engine.scoresOnly.imagesPerSecond,
    engineWithHeatmap: r.engine.withHeatmap.imagesPerSecond,
    httpAtSaturation: Math.max(...r.http.map((h) => h.stats.imagesPerSecond)),
  });
  const a = rate(first);
  const b = rate(other);
  return Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof typeof a] / b[k as keyof typeof b]])) as Record<keyof typeof a, number>;
}

// Every bundle loaded before anything is measured, so that a wrong name fails at once and not after minutes.
const bundles: [string, Bundle][] = [];
for (const model of models) {
  const dir = bundleDirOf(model);
  try {
    bundles.push([dir, await loadBundle(dir)]);
  } catch (err) {
    console.error(`bench: --model ${model}: ${(err as Error).message}`);
    process.exit(2);
  }
}
const reports: Report[] = [];
for (const [i, [dir, bundle]] of bundles.entries()) reports.push(await benchModel(dir, bundle, i === 0 ? (values.run ?? []) : []));
const comparison = reports.slice(1).map((r) => ({ model: r.model, against: reports[0].model, costRatio: costRelativeTo(reports[0], r) }));
for (const c of comparison) {
  const f = Object.entries(c.costRatio).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  console.log(`cost of ${c.model.name} ${c.model.version} relative to ${c.against.name} ${c.against.version} (time per image, this run): ${f}`);
}
if (values.json) {
  await mkdir(path.dirname(values.json), { recursive: true });
  // One model: its report, as before; several: all of them and the comparison.
  await writeFile(values.json, JSON.stringify(reports.length === 1 ? reports[0] : { models: reports, comparison }, null, 1) + '\n');
  console.log(`written: ${values.json}`);
}
