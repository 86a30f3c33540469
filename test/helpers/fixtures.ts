import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE_MODELS_DIR = fileURLToPath(new URL('../fixtures/bundles/', import.meta.url));
export const TINY = fileURLToPath(new URL('../fixtures/bundles/tiny', import.meta.url));
/** A copy of the tiny bundle in the models folder `models`, its manifest changed by `edit`; returns its folder. */
export async function editedTiny(models: string, edit: (manifest: any) => void): Promise<string> {
  const dir = path.join(models, 'tiny');
  await cp(TINY, dir, { recursive: true });
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8'));
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest));
  return dir;
}

export const DEFAULT_MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));
export const SHARED_MTD = fileURLToPath(new URL('../../../shared/datasets/mtd/magnetic_tile', import.meta.url));

/** A deterministic pseudo-random float array (LCG), so tests need no seeds of their own. */
export function noise(n: number, seed = 1, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * scale;
  }
  return out;
}
