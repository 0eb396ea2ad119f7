import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { fileError } from './errors.js';
import { nonRegularFileReason } from './file-kinds.js';

/** sha256 of a regular file's bytes. Anything else is refused: reading a FIFO would block until someone writes to it. */
export async function sha256File(file: string): Promise<string> {
  const notRegular = nonRegularFileReason(await fs.stat(file));
  if (notRegular) throw fileError(file, `is ${notRegular}`, 'pass a regular file');
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
