/**
 * A process's CPU time split by thread, from Linux's per-thread accounting (/proc/<pid>/task/<tid>/stat), so that
 * the host path's cost can be told apart: the event loop, the inference workers, libvips' pixel threads, and the
 * rest (libuv's pool running sharp's calls, V8's garbage collector and compiler). Elsewhere: undefined.
 */
import { readdir, readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { INFERENCE_THREAD_NAME } from '../engine/thread-name.js';

export interface ThreadTicks {
  name: string;
  ticks: number;
}

/** Name and user + system clock ticks of one `stat` line; the name may hold spaces and parentheses, hence the last ')'. */
export function parseTaskStat(stat: string): ThreadTicks {
  const open = stat.indexOf('('), close = stat.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc stat line: ${stat.slice(0, 40)}`);
  // Fields after the name: state is the 3rd field of the line, utime and stime the 14th and 15th.
  const f = stat.slice(close + 2).split(' ');
  return { name: stat.slice(open + 1, close), ticks: Number(f[11]) + Number(f[12]) };
}

export type ThreadGroup = 'main' | 'inference' | 'libvips' | 'other';

export function groupOf(tid: string, pid: number, name: string): ThreadGroup {
  if (tid === String(pid)) return 'main';
  if (name === INFERENCE_THREAD_NAME) return 'inference';
  if (name.startsWith('libvips')) return 'libvips';
  return 'other';
}

/** Each live thread's ticks; a thread that exits between the listing and the read is skipped. */
export async function threadTicks(pid: number): Promise<Map<string, ThreadTicks> | undefined> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => undefined);
  if (!tids) return undefined;
  const out = new Map<string, ThreadTicks>();
  for (const tid of tids) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (stat) out.set(tid, parseTaskStat(stat));
  }
  return out;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/**
 * CPU milliseconds per `per` (e.g. images) of each group between two snapshots. A thread born in between counts
 * from zero; one that died in between is lost (the pool's threads live as long as the server).
 */
export function cpuMsByGroup(before: Map<string, ThreadTicks>, after: Map<string, ThreadTicks>, pid: number, per = 1, clockTicks = CLOCK_TICKS): Record<ThreadGroup, number> {
  const out: Record<ThreadGroup, number> = { main: 0, inference: 0, libvips: 0, other: 0 };
  for (const [tid, t] of after) {
    out[groupOf(tid, pid, t.name)] += ((t.ticks - (before.get(tid)?.ticks ?? 0)) * 1000) / clockTicks / per;
  }
  return out;
}
