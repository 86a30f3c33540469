/** The built server as a child process on loopback, for the benchmark and the soak script. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fromRoot } from '../paths.js';

export interface ServerProcess {
  url: string;
  process: ChildProcess;
  /** Resident memory now (VmRSS) or at its peak (VmHWM), MiB. */
  rssMiB(which?: 'VmRSS' | 'VmHWM'): Promise<number>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts dist/src/main.cjs on a random loopback port with `env` and waits until /readyz says ready. The bound
 * is a deadline, not a count of tries (a busy machine answers each try slower), and generous: loading and
 * warming the default ensemble takes seconds on an idle machine and several times that on a loaded one.
 */
export async function startServer(env: Record<string, string | undefined>, readyTimeoutMs = 300_000): Promise<ServerProcess> {
  const port = 18000 + Math.floor(Math.random() * 6000);
  const child = spawn(process.execPath, [fromRoot('dist', 'src', 'main.cjs')], {
    env: { ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + readyTimeoutMs;
  while (!(await fetch(`${url}/readyz`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before it was ready`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server was not ready after ${readyTimeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    process: child,
    rssMiB: async (which = 'VmRSS') => Number((await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '')).match(new RegExp(`${which}:\\s+(\\d+) kB`))?.[1] ?? NaN) / 1024,
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A multipart/form-data body with one PNG in field `image`, and its content type. */
export function multipartImage(png: Buffer): { body: Buffer; contentType: string } {
  const b = 'mixdistillboundary';
  const body = Buffer.concat([Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n`), png, Buffer.from(`\r\n--${b}--\r\n`)]);
  return { body, contentType: `multipart/form-data; boundary=${b}` };
}
