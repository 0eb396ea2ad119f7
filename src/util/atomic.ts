import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Durable, atomic file-system writes. Every write goes to a temp sibling, is fsync'd, renamed into
 * place, and the directory is fsync'd after the rename: readers see the old content or the new,
 * never half, and what was renamed survives a power loss, not just a crash of tl.
 */

const TEMP_MARK = '.tmp-';

/** A sibling temp name, so the final rename stays on one filesystem and is atomic. The pid in it lets a later run tell a stale temp from a live one. */
export function tempSibling(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a file or directory by path. Some filesystems refuse to fsync directories (EINVAL): nothing more can be done there. */
export async function fsyncPath(p: string): Promise<void> {
  const handle = await fs.open(p, 'r');
  try {
    await handle.sync();
  } catch (err) {
    if (!['EINVAL', 'ENOTSUP', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

/** Every regular file under `dir`, then `dir` itself: what a directory needs before it is renamed into place. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir);
}

/**
 * `mkdir -p` that cannot hang. Node's recursive mkdir loops forever where a parent refuses new
 * entries with ENOENT (/proc); creating one level at a time fails there at once.
 */
export async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  let p = path.resolve(dir);
  for (;;) {
    const stat = await fs.stat(p).catch((err: NodeJS.ErrnoException) => {
      // ENOTDIR: some ancestor is a file; keep walking up to name it.
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (stat && !stat.isDirectory()) throw Object.assign(new Error(`${p} is not a directory`), { code: 'ENOTDIR', path: p });
    if (stat) break;
    missing.push(p);
    const parent = path.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Make a finished temp file (from tempSibling) durable and rename it over `target`: the one way a file enters its place. */
export async function moveIntoPlace(tmp: string, target: string): Promise<void> {
  await fsyncPath(tmp);
  await fs.rename(tmp, target);
  await fsyncPath(path.dirname(target));
}

/** Write a file so that readers see either the old content or the new one, never half of it. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await makeDirs(path.dirname(target));
  const tmp = tempSibling(target);
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await moveIntoPlace(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Build a directory under a temp name and rename it into place when `fill` succeeds.
 * An existing `target` is replaced only after the new one is complete, so an interrupted
 * write leaves the previous version intact.
 */
export async function writeDirAtomic(target: string, fill: (dir: string) => Promise<void>): Promise<void> {
  await makeDirs(path.dirname(target));
  const tmp = tempSibling(target);
  await fs.mkdir(tmp);
  try {
    await fill(tmp);
    await fsyncTree(tmp);
    const old = `${tmp}.old`;
    const hadOld = await exists(target);
    if (hadOld) await fs.rename(target, old);
    await fs.rename(tmp, target);
    await fsyncPath(path.dirname(target));
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Move a finished directory into place, never over anything. rename(2) would silently replace an
 * empty directory, so the target is checked first; callers hold the target's lock, which keeps
 * other tl processes from racing that check.
 */
export async function renameNoReplace(from: string, to: string): Promise<void> {
  if (await exists(to)) throw Object.assign(new Error(`${to} already exists`), { code: 'EEXIST', path: to });
  await fsyncTree(from);
  await fs.rename(from, to);
  await fsyncPath(path.dirname(to));
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Is process `pid` alive on this machine? (EPERM: it exists but belongs to someone else.) */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** tempSibling's names (and writeDirAtomic's `.old` of them), with the writer's pid. */
const TEMP_NAME = new RegExp(`^\\..+${TEMP_MARK.replace('.', '\\.')}(\\d+)-[0-9a-f]{8}(\\.old)?$`);

/** The pid a temp name was made by, if `name` is one of tempSibling's. */
function tempOwner(name: string): number | undefined {
  const match = TEMP_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Remove temp files and folders in `dir` left by processes that no longer run (a kill during a
 * write). Live processes' temps are left alone, so concurrent runs sharing a cache are safe.
 * Returns how many were removed.
 */
export async function removeStaleTemps(dir: string): Promise<number> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of entries) {
    const pid = tempOwner(name);
    if (pid === undefined || pid === process.pid || processAlive(pid)) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
