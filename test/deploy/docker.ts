/**
 * What the deploy tests share: the docker CLI with a time bound on every call, the images they need (built
 * once per machine where absent), a load generator that counts every answer, and waits with deadlines.
 * Traffic goes to 127.0.0.1 only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { fromRoot } from '../../src/paths.js';

export interface Result { status: number | null; stdout: string; stderr: string }

/** A command with a deadline; a command that runs past it is killed and reported, never waited on forever. */
export function sh(cmd: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {}): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, ...opts.env }, cwd: opts.cwd, maxBuffer: 1 << 26 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** docker ... that must succeed; its stdout, trimmed. */
export function docker(args: string[], timeoutMs = 120_000): string {
  const r = sh('docker', args, { timeoutMs });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout.trim();
}

/** false when a Docker engine answers, else why the deploy tests skip. */
export function engineMissing(): string | false {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) return `SKIPPED: no docker CLI (${r.error.message}); apt-get install docker.io`;
  if (r.status !== 0) return `SKIPPED: the Docker daemon does not answer (${r.stderr.trim().split('\n').pop()}); start dockerd`;
  return false;
}

export const LOCAL_NODE = 'mixdistill-local/node:20-bookworm-slim';
export const LOCAL_NGINX = 'mixdistill-local/nginx:bookworm';
/** The tag the compose files run for the CPU target. */
export const CPU_IMAGE = 'mixdistill:cpu';

/** The local base images (docker/base-images.sh reuses them when present). */
export function baseImages(): void {
  const r = sh('bash', [fromRoot('docker', 'base-images.sh')], { timeoutMs: 1_200_000 });
  if (r.status !== 0) throw new Error(`docker/base-images.sh exited ${r.status}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  process.stderr.write(r.stdout);
}

/**
 * Builds the CPU image from a clean checkout of HEAD (a clone: what is committed, nothing else of the working
 * tree) and tags it `tag`; returns the build's seconds and the image's size in bytes.
 */
export function buildCpuImage(tag: string): { seconds: number; bytes: number; commit: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mixdistill-image-'));
  try {
    const clone = sh('git', ['clone', '--quiet', '--no-hardlinks', fromRoot(), dir], { timeoutMs: 300_000 });
    if (clone.status !== 0) throw new Error(`git clone: ${clone.stderr}`);
    const commit = sh('git', ['rev-parse', 'HEAD'], { cwd: dir }).stdout.trim();
    const t0 = performance.now();
    docker(['build', '-q', '-f', 'docker/Dockerfile', '--target', 'cpu', '--build-arg', `NODE_IMAGE=${LOCAL_NODE}`, '-t', tag, dir], 1_800_000);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, bytes: Number(docker(['image', 'inspect', '-f', '{{.Size}}', tag])), commit };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The picture the tests post: a real MTD part when ../shared has it (as the bench), else a generated texture. */
export async function examplePicture(): Promise<Buffer> {
  const dir = fromRoot('..', 'shared', 'datasets', 'mtd', 'magnetic_tile', 'test', 'blowhole');
  if (existsSync(dir)) return readFileSync(path.join(dir, readdirSync(dir).filter((f) => f.endsWith('.png')).sort()[0]));
  return sharp({ create: { width: 320, height: 240, channels: 3, background: '#7a7a7a', noise: { type: 'gaussian', mean: 120, sigma: 30 } } }).png().toBuffer();
}

export async function detect(url: string, picture: Buffer, query = '', timeoutMs = 60_000): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(picture)], { type: 'image/png' }), 'part.png');
  const res = await fetch(`${url}/detect${query}`, { method: 'POST', body: form, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* not JSON: kept as text for the message */ }
  return { status: res.status, body };
}

export interface LoadReport { sent: number; ok: number; failed: number; failures: string[]; versions: Record<string, number> }

/**
 * `concurrency` clients posting `picture` back to back until `stop()` is called (or `maxMs` passes); every
 * request is counted as answered 200 or failed (any other status, a reset, a timeout), with the reasons.
 */
export function steadyLoad(url: string, picture: Buffer, concurrency: number, maxMs: number, query = '') {
  const report: LoadReport = { sent: 0, ok: 0, failed: 0, failures: [], versions: {} };
  let stopped = false;
  const deadline = performance.now() + maxMs;
  const client = async () => {
    while (!stopped && performance.now() < deadline) {
      report.sent++;
      try {
        const r = await detect(url, picture, query, 30_000);
        if (r.status === 200) {
          report.ok++;
          const v = `${r.body.model.name} ${r.body.model.version}`;
          report.versions[v] = (report.versions[v] ?? 0) + 1;
        } else {
          report.failed++;
          report.failures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        }
      } catch (err) {
        report.failed++;
        report.failures.push(String((err as Error).cause ?? err).slice(0, 200));
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, client));
  return { report, stop: async () => { stopped = true; await done; return report; } };
}

/** Polls `check` until it returns a value or `ms` pass; then throws with `what`. */
export async function waitFor<T>(what: string, ms: number, check: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 500): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const health = (container: string) => docker(['inspect', '-f', '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', container]);

/** docker-compose (Debian's 1.29, which the tests run on) for one project, with the local base images. */
export function compose(project: string, file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): string {
  const r = sh('docker-compose', ['-p', project, '-f', fromRoot('docker', file), ...args], {
    timeoutMs, env: { NODE_IMAGE: LOCAL_NODE, NGINX_IMAGE: LOCAL_NGINX, ...env },
  });
  if (r.status !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout.trim();
}

/** Everything a compose project left (containers, networks, volumes), removed whatever state it is in. */
export function composeDown(project: string, file: string): void {
  sh('docker-compose', ['-p', project, '-f', fromRoot('docker', file), 'down', '-v', '--remove-orphans', '-t', '20'], {
    timeoutMs: 120_000, env: { NODE_IMAGE: LOCAL_NODE, NGINX_IMAGE: LOCAL_NGINX },
  });
}

/** Names of the containers of a compose project, running or not. */
export const projectContainers = (project: string) =>
  docker(['ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Names}}']).split('\n').filter(Boolean);

export const freePort = () => 20000 + Math.floor(Math.random() * 20000);
