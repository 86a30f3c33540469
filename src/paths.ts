import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or image) root: the nearest folder above this module holding openapi.yaml. Works from src/ and dist/src/. */
export const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'openapi.yaml'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('openapi.yaml not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

export const fromRoot = (...parts: string[]) => path.join(ROOT, ...parts);
