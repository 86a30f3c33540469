import { writeFileSync } from 'node:fs';

/** What `top -H`, `ps -L` and the bench's per-thread figures show for an inference worker (Linux: 15 bytes at most). */
export const INFERENCE_THREAD_NAME = 'mixdist-infer';

/** Names the calling thread where Linux lets it (/proc/thread-self/comm); a no-op elsewhere. */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // not Linux, or /proc not mounted: a name is a convenience, never a requirement
  }
}
