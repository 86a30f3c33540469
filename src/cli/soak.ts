/**
 * npm run soak [-- --short] [--requests N] [--no-targets] [--json out/soak.json]
 *
 * Overload and soak on loopback, bounded in time and count, stopping by itself:
 *   warm-up, then 4 x capacity concurrency for 60 s (8 s with --short), then 10,000 requests (500).
 * Capacity concurrency is measured first: the smallest concurrency whose throughput is within 10 % of the
 * best of 1, 2, 4, 8. Reports status counts, that every request got an answer, RSS before and after,
 * event-loop delay and /healthz latency under load; exits 1 on a violation.
 *
 * Two kinds of violation: the contract, which holds however loaded the machine is (only 200 and 503, every
 * request answered, /healthz answering, a clean exit), and the targets, figures that depend on the machine
 * (RSS growth under 10 %). --no-targets reports the targets without checking them: npm test runs that way,
 * because on a busy machine RSS growth over a few seconds says more about the neighbours than the server.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { parseCli } from './args.js';
import { multipartImage, startServer } from './server-process.js';

const values = parseCli(
  {
    short: { type: 'boolean', default: false },
    requests: { type: 'string' },
    'no-targets': { type: 'boolean', default: false },
    json: { type: 'string' },
    model: { type: 'string', default: 'mtd-mnv2-incv3' },
  },
  'usage: npm run soak [-- --short] [--requests N] [--no-targets] [--json out/soak.json] [--model mtd-mnv2-incv3]',
);
const short = values.short!;
const checkTargets = !values['no-targets'];
const overloadSeconds = short ? 8 : 60;
const amount = values.requests === undefined ? (short ? 500 : 10_000) : Number(values.requests);
if (!Number.isInteger(amount) || amount < 1) {
  console.error(`--requests must be a positive integer, not ${values.requests}`);
  process.exit(2);
}
const log = (m: string) => console.error(m);

// MALLOC_ARENA_MAX=2 as in the Docker image: glibc's per-thread arenas (libvips and ORT threads) otherwise
// let RSS creep up under load.
const server = await startServer({ MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2', DEFAULT_MODEL: values.model, EXECUTION_PROVIDERS: process.env.EXECUTION_PROVIDERS ?? 'cpu', LOG_LEVEL: 'error', QUEUE_SIZE: process.env.QUEUE_SIZE ?? '32' });
const url = server.url;
process.on('exit', () => void server.stop());

const image = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#777', noise: { type: 'gaussian', mean: 120, sigma: 30 } } }).png().toBuffer();
const { body, contentType } = multipartImage(image);
const headers = { 'content-type': contentType };

interface Phase { requests: number; statuses: Record<string, number>; errors: number; timeouts: number; rps: number; p50: number; p99: number; healthzP99: number; healthzFailures: number }
async function phase(connections: number, opts: { duration?: number; amount?: number }): Promise<Phase> {
  const statuses: Record<string, number> = {};
  const health: number[] = [];
  let healthFailures = 0, probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      health.push(performance.now() - t);
      if (!ok) healthFailures++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: `${url}/detect`, method: 'POST', body, headers, connections, timeout: 60, ...(opts.amount ? { amount: opts.amount } : { duration: opts.duration }) },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on('response', (_client, statusCode) => { statuses[statusCode] = (statuses[statusCode] ?? 0) + 1; });
  });
  probing = false;
  await probe;
  health.sort((x, y) => x - y);
  const lat = r.latency as unknown as Record<string, number>;
  return { requests: r.requests.total, statuses, errors: r.errors, timeouts: r.timeouts, rps: r.requests.average, p50: lat.p50, p99: lat.p99, healthzP99: health[Math.floor(0.99 * (health.length - 1))] ?? NaN, healthzFailures: healthFailures };
}

// capacity
const rates: [number, number][] = [];
for (const c of [1, 2, 4, 8]) rates.push([c, (await phase(c, { duration: short ? 1 : 4 })).rps]);
const best = Math.max(...rates.map(([, r]) => r));
const capacity = rates.find(([, r]) => r >= 0.9 * best)![0];
log(`capacity: concurrency ${capacity} (${rates.map(([c, r]) => `c=${c} ${r.toFixed(1)}/s`).join(', ')})`);

await phase(4 * capacity, { duration: 5 }); // warm-up at the load to come, so arenas and caches are sized
const overload = await phase(4 * capacity, { duration: overloadSeconds });
log(`overload ${4 * capacity} connections, ${overloadSeconds} s: ${JSON.stringify(overload.statuses)}, errors ${overload.errors}, timeouts ${overload.timeouts}, ${overload.rps.toFixed(1)} req/s, /healthz p99 ${overload.healthzP99.toFixed(1)} ms`);
// Baseline after warm-up and overload: a short warm-up at low capacity left the arenas still growing (565 -> 731 MiB, then flat).
const rssBefore = await server.rssMiB();
const soak = await phase(4 * capacity, { amount });
log(`soak ${amount} requests: ${JSON.stringify(soak.statuses)}, errors ${soak.errors}, timeouts ${soak.timeouts}, p50 ${soak.p50} ms, p99 ${soak.p99} ms, /healthz p99 ${soak.healthzP99.toFixed(1)} ms`);
const rssAfter = await server.rssMiB();
const metrics = await (await fetch(`${url}/metrics`)).text();
const lagP99 = Number(metrics.match(/^nodejs_eventloop_lag_p99_seconds (\S+)/m)?.[1] ?? NaN) * 1000;
const exitCode = await server.stop();

const violations: string[] = [];
const targetMisses: string[] = [];
for (const [name, p] of [['overload', overload], ['soak', soak]] as const) {
  const other = Object.keys(p.statuses).filter((s) => s !== '200' && s !== '503');
  if (other.length) violations.push(`${name}: statuses other than 200 and 503: ${other.join(', ')}`);
  if (p.errors || p.timeouts) violations.push(`${name}: ${p.errors} errors, ${p.timeouts} timeouts (requests without an answer)`);
  if (p.healthzFailures) violations.push(`${name}: /healthz failed ${p.healthzFailures} times`);
  const answered = Object.values(p.statuses).reduce((a, x) => a + x, 0);
  if (answered < p.requests) violations.push(`${name}: ${p.requests - answered} requests without a status`);
}
if (soak.requests < amount) violations.push(`soak: ${soak.requests} of ${amount} requests completed`);
const growth = (rssAfter - rssBefore) / rssBefore;
if (!(growth < 0.1)) targetMisses.push(`RSS grew ${(100 * growth).toFixed(1)} % (${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB)`);
if (exitCode !== 0) violations.push(`the server exited with ${exitCode} on SIGTERM`);

if (checkTargets) violations.push(...targetMisses);
const report = { short, requests: amount, checkTargets, capacity, rates, overload, soak, rssBeforeMiB: rssBefore, rssAfterMiB: rssAfter, rssGrowth: growth, eventLoopLagP99Ms: lagP99, serverExitCode: exitCode, violations, targetMisses };
console.log(`RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB (${(100 * growth).toFixed(1)} %), event-loop lag p99 ${lagP99.toFixed(1)} ms, server exit ${exitCode}`);
if (values.json) {
  await mkdir(path.dirname(values.json), { recursive: true });
  await writeFile(values.json, JSON.stringify(report, null, 1) + '\n');
}
if (!checkTargets && targetMisses.length) console.log(`targets missed (reported, not checked with --no-targets):\n- ${targetMisses.join('\n- ')}`);
console.log(violations.length ? `VIOLATIONS:\n- ${violations.join('\n- ')}` : checkTargets ? 'soak: no violation' : 'soak: no violation of the contract (targets not checked)');
process.exit(violations.length ? 1 : 0);
