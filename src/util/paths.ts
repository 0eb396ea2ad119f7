import os from 'node:os';
import path from 'node:path';
import { requireWritableDir } from './writable.js';

/** Root of the asset cache: `TL_HOME`, else `~/.cache/tl`. */
export function tlHome(): string {
  return process.env.TL_HOME ? path.resolve(process.env.TL_HOME) : path.join(os.homedir(), '.cache', 'tl');
}

/** The repository root (where package.json lives), found from this compiled or source file. */
export function packageRoot(): string {
  const here = path.dirname(new URL(import.meta.url).pathname);
  // src/util -> root, or dist/src/util -> root
  const up = here.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..';
  return path.resolve(here, up);
}

/** A folder of the cache, created and proven writable: a read-only TL_HOME fails with one line, before any work. */
export async function writableCacheDir(dir: string): Promise<string> {
  await requireWritableDir(dir, 'set TL_HOME to a writable folder');
  return dir;
}
