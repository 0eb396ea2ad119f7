import { promises as fs, unlinkSync } from 'node:fs';
import os from 'node:os';
import { processAlive } from './atomic.js';
import { fileError } from './errors.js';

/** An exclusive claim on a path, held by one process for as long as it works on that path. */
export interface PathLock {
  readonly file: string;
  release(): Promise<void>;
}

interface LockOwner {
  pid: number;
  host: string;
  started: string;
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** A lock whose owner died (kill -9, power loss) is free; one from another host cannot be judged, so it holds. */
function isStale(owner: LockOwner | undefined): boolean {
  if (!owner || typeof owner.pid !== 'number') return true;
  return owner.host === os.hostname() && !processAlive(owner.pid);
}

/**
 * Take `TARGET.lock` with O_EXCL, so two tl processes never work on one target at once. The lock
 * file names its owner; a lock left by a dead process is taken over. It is removed on release and,
 * should the process exit without releasing, by an exit hook.
 */
export async function acquireLock(target: string, what = 'run'): Promise<PathLock> {
  const file = `${target}.lock`;
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await fs.open(file, 'wx');
      try {
        await handle.writeFile(JSON.stringify(owner) + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const current = await readOwner(file);
      if (attempt > 0 || !isStale(current)) {
        throw fileError(target, `is in use by another tl ${what} (pid ${current?.pid ?? '?'}, lock ${file})`, 'wait for it to finish or choose another --out');
      }
      await fs.rm(file, { force: true });
    }
  }
  const onExit = () => {
    try {
      unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
  process.once('exit', onExit);
  return {
    file,
    async release() {
      process.off('exit', onExit);
      await fs.rm(file, { force: true });
    },
  };
}
