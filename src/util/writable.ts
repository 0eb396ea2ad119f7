import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeDirs } from './atomic.js';
import { TlError } from './errors.js';

/** How long a file-system call may take before tl gives up on the path (a hung network mount, /proc). */
const FS_TIMEOUT_MS = 10_000;

/** `work` or a TlError once `ms` have passed; the timer does not keep the process alive. */
export async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => TlError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a write failed, in words a person acts on. */
export function writeProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EROFS':
      return 'not writable (read-only file system)';
    case 'EACCES':
    case 'EPERM':
      return 'not writable (permission denied)';
    case 'ENOTDIR':
    case 'EEXIST':
      return `cannot be created (${(err as NodeJS.ErrnoException).path ?? 'a parent'} is a file, not a folder)`;
    case 'ENOENT':
      return `not writable (${(err as NodeJS.ErrnoException).path ?? 'its parent'} does not accept new entries)`;
    case 'ENOSPC':
      return 'not writable (no space left on device)';
    case 'EDQUOT':
      return 'not writable (disk quota exceeded)';
    default:
      return `not writable (${code ?? (err as Error).message})`;
  }
}

/**
 * Prove, before any work starts, that `dir` can be created and written: make its parents, write,
 * fsync and remove a probe file in it. Fails with one line naming `name` (default `dir`) and `fix`, within
 * FS_TIMEOUT_MS even where the file system hangs.
 */
export async function requireWritableDir(dir: string, fix: string, name = dir): Promise<void> {
  const probe = async () => {
    await makeDirs(dir);
    const file = path.join(dir, `.tl-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    const handle = await fs.open(file, 'wx');
    try {
      await handle.writeFile('probe');
      await handle.sync();
    } finally {
      await handle.close();
      await fs.rm(file, { force: true });
    }
  };
  const failure = (problem: string) => new TlError(`${name}: ${problem}; ${fix}`);
  try {
    await withTimeout(probe(), FS_TIMEOUT_MS, () => failure(`did not respond within ${FS_TIMEOUT_MS / 1000} s`));
  } catch (err) {
    if (err instanceof TlError) throw err;
    throw failure(writeProblem(err));
  }
}
