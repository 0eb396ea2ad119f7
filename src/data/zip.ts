import { createWriteStream } from 'node:fs';
import { crc32 } from 'node:zlib';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { fileError } from '../util/errors.js';

/** One wanted zip entry and the (temp) file it is extracted to. */
export interface ZipExtraction {
  entry: string;
  target: string;
}

export interface ExtractedEntry {
  entry: string;
  target: string;
  size: number;
  crc32: number;
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err || !zip) reject(fileError(file, `not a readable zip file (${err?.message ?? 'no data'})`, 'delete it and download it again'));
      else resolve(zip);
    });
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => (err || !stream ? reject(err ?? new Error('no stream')) : resolve(stream)));
  });
}

/**
 * Copy the wanted entries of a zip to their targets, checking each entry's CRC-32 against the
 * central directory (yauzl leaves that to the caller). Entries not in the zip are left out of
 * the result; `onBytes` reports extraction progress in compressed-entry bytes written.
 */
export async function extractZipEntries(
  zipFile: string,
  wanted: ZipExtraction[],
  onBytes?: (n: number) => void,
): Promise<ExtractedEntry[]> {
  const byName = new Map(wanted.map((w) => [w.entry, w]));
  const zip = await openZip(zipFile);
  const done: ExtractedEntry[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const want = byName.get(entry.fileName);
        if (!want) return zip.readEntry();
        extractOne(zip, entry, want, onBytes)
          .then((result) => {
            done.push(result);
            zip.readEntry();
          })
          .catch(reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return done;
}

async function extractOne(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  want: ZipExtraction,
  onBytes?: (n: number) => void,
): Promise<ExtractedEntry> {
  let crc = 0;
  let size = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = crc32(chunk, crc);
      size += chunk.length;
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  await pipeline(await openEntry(zip, entry), check, createWriteStream(want.target));
  if (crc !== entry.crc32 >>> 0 || size !== entry.uncompressedSize) {
    throw fileError(want.entry, `CRC-32 check failed inside the zip (got ${crc.toString(16)}, zip says ${(entry.crc32 >>> 0).toString(16)})`, 'the download is corrupt; run the fetch again');
  }
  return { entry: want.entry, target: want.target, size, crc32: crc };
}
