import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { fetchAssets, readManifest, type AssetFile } from '../src/data/assets.js';
import { shared, tempDir } from './helpers.js';

process.env.TL_QUIET = '1';
const home = tempDir('tl-fetch-');
process.env.TL_HOME = home;

const labelsFile = 'emnist-mnist-test-labels-idx1-ubyte.gz';
const labelsSha = 'bcc5385d38f083dba046f5f756e99b32f5ea7fad122c6243c71c2239873065ca';
let labels: Buffer;
const served = new Map<string, Buffer>();
let server: http.Server;
let base: string;

/** A zip with stored (uncompressed) entries: enough to exercise the zip path without a zip library. */
function storedZip(entries: { name: string; data: Buffer; crc?: number }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const crc = e.crc ?? crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(e.data.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, e.data);
    centrals.push(central, name);
    offset += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

before(async () => {
  labels = await fs.readFile(shared('datasets', 'emnist-mnist', labelsFile));
  served.set('/labels.gz', labels);
  served.set('/gzip.zip', storedZip([{ name: 'gzip/readme.txt', data: Buffer.from('hi') }, { name: `gzip/${labelsFile}`, data: labels }]));
  served.set('/bad-crc.zip', storedZip([{ name: `gzip/${labelsFile}`, data: labels, crc: crc32(labels) ^ 1 }]));
  server = http.createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.close();
  await fs.rm(home, { recursive: true, force: true });
});

function file(overrides: Partial<AssetFile>): AssetFile {
  return { name: labelsFile, url: `${base}/labels.gz`, sha256: labelsSha, size: labels.length, ...overrides };
}

test('downloads over HTTP, falls back to a mirror, verifies sha256 and records it', async () => {
  const r = await fetchAssets('t/http', [file({ url: `${base}/gone.gz`, mirrors: [`${base}/labels.gz`] })]);
  assert.equal(r.added[0]!.verifiedBy, 'sha256');
  assert.deepEqual(await fs.readFile(path.join(r.dir, labelsFile)), labels);
  const again = await fetchAssets('t/http', [file({})]);
  assert.deepEqual(again.alreadyCached, [labelsFile]);
});

test('a download with the wrong checksum leaves nothing in the cache', async () => {
  const wrong = 'ab'.repeat(32);
  await assert.rejects(fetchAssets('t/mismatch', [file({ sha256: wrong })]), new RegExp(`sha256 mismatch for ${labelsFile}: expected ${wrong}, got ${labelsSha}`));
  assert.deepEqual(await fs.readdir(path.join(process.env.TL_HOME!, 't/mismatch')), []);
});

test('an unreachable URL fails with one line suggesting --from', async () => {
  await assert.rejects(fetchAssets('t/404', [file({ url: `${base}/missing.gz` })]), /download of .* failed \(.*HTTP 404\); .*--from DIR/);
});

test('files inside a zip are extracted, CRC-checked, and recorded when no sha256 is published', async () => {
  const r = await fetchAssets('t/zip', [file({ url: `${base}/gzip.zip`, zipEntry: `gzip/${labelsFile}`, sha256: null })]);
  assert.equal(r.added[0]!.verifiedBy, 'crc32');
  assert.equal(r.added[0]!.sha256, labelsSha);
  assert.equal((await readManifest('t/zip'))[labelsFile]!.sha256, labelsSha);
  assert.deepEqual((await fs.readdir(r.dir)).sort(), [labelsFile, 'tl-manifest.json']);

  await assert.rejects(fetchAssets('t/badzip', [file({ url: `${base}/bad-crc.zip`, zipEntry: `gzip/${labelsFile}`, sha256: null })]), /CRC-32 check failed/);
  assert.deepEqual(await fs.readdir(path.join(process.env.TL_HOME!, 't/badzip')), []);
});
