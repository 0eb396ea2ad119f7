import type { Stats } from 'node:fs';
import { errorLine } from './errors.js';

/** Why a file system call failed, in the words of a "skipped" list. */
export function fileAccessReason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'symlink loop';
    default:
      return `unreadable (${errorLine(err)})`;
  }
}

const SPECIAL_FILE_KINDS: readonly [string, (stat: Stats) => boolean][] = [
  ['FIFO', (s) => s.isFIFO()],
  ['socket', (s) => s.isSocket()],
  ['character device', (s) => s.isCharacterDevice()],
  ['block device', (s) => s.isBlockDevice()],
  ['directory', (s) => s.isDirectory()],
];

/** FIFOs, sockets and devices are never read: opening a named pipe blocks until someone writes to it. */
export function nonRegularFileReason(stat: Stats): string | undefined {
  if (stat.isFile()) return undefined;
  const kind = SPECIAL_FILE_KINDS.find(([, is]) => is(stat))?.[0] ?? 'special file';
  return `not a regular file (${kind})`;
}
