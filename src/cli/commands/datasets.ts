import type { Command } from 'commander';
import { TlError } from '../../util/errors.js';
import { datasetNames, catalogEntry } from '../../data/catalog.js';
import { datasetStatus, fetchDataset, type DatasetStatus } from '../../data/datasets.js';
import { importCsv } from '../../data/csv.js';
import type { FetchResult } from '../../data/assets.js';

function describeStatus(s: DatasetStatus): string[] {
  const lines = [`${s.name}  (${s.title}, ${s.classes} classes)  ${s.cacheDir}`];
  for (const split of s.splits) {
    const state = split.cached ? 'cached' : `missing ${split.missing.join(', ')}`;
    lines.push(`  ${split.split.padEnd(5)} ${String(split.count).padStart(7)} images  ${state}`);
  }
  return lines;
}

function describeFetch(name: string, r: FetchResult, from?: string): string[] {
  const lines = r.added.map((a) => `  added ${a.storedAs}  (${verificationText(a.verifiedBy)}, sha256 ${a.sha256})`);
  if (r.alreadyCached.length > 0) lines.push(`  already cached: ${r.alreadyCached.join(', ')}`);
  if (r.missing.length > 0) lines.push(`  not in ${from}: ${r.missing.join(', ')}; these stay missing`);
  return [`${name}: ${r.dir}`, ...lines];
}

function verificationText(v: string): string {
  if (v === 'sha256') return 'sha256 verified';
  if (v === 'crc32') return 'no published sha256: zip CRC-32 verified, hash recorded';
  return 'no published checksum: hash recorded, not verified';
}

function parseLayout(value: string | undefined): 'idx' | 'upright' | undefined {
  if (value === undefined || value === 'idx' || value === 'upright') return value;
  throw new TlError(`--layout ${value}: use idx (pixels stored like the idx files) or upright`);
}

export function register(program: Command): void {
  const datasets = program.command('datasets').description('list, fetch and import the datasets tl knows (Fashion-MNIST, EMNIST)');

  datasets
    .command('list')
    .description('show every known dataset, its splits, and which files are cached (TL_HOME)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const all = await Promise.all(datasetNames().map((n) => datasetStatus(n)));
      if (opts.json) console.log(JSON.stringify(all, null, 2));
      else console.log(all.flatMap(describeStatus).join('\n'));
    });

  datasets
    .command('fetch <name>')
    .description('download a dataset from its official URLs (or import local files with --from) into the cache, checksum-verified')
    .option('--from <dir>', 'import the files found in DIR (matched by name, .gz or gunzipped) instead of downloading')
    .action(async (name: string, opts: { from?: string }) => {
      const result = await fetchDataset(name, { from: opts.from });
      console.log(describeFetch(name, result, opts.from).join('\n'));
      const status = await datasetStatus(name);
      const incomplete = status.splits.filter((s) => !s.cached).map((s) => s.split);
      if (incomplete.length > 0) {
        const usable = status.splits.filter((s) => s.cached).map((s) => s.split);
        const hint = usable.length > 0 ? `; train on the ${usable.join('/')} split with --resplit 0.2` : '';
        console.log(`${name}: incomplete, no ${incomplete.join('/')} split${hint}`);
      }
    });

  datasets
    .command('import-csv <name>')
    .description('convert Kaggle-style CSVs (label,pixel0..pixel783 per row, header optional) into the cache')
    .option('--train <file>', 'CSV of the train split')
    .option('--test <file>', 'CSV of the test split')
    .option('--layout <layout>', 'pixel layout of the CSV: idx (as in the idx files; Kaggle EMNIST and Fashion-MNIST) or upright; default from the catalog')
    .action(async (name: string, opts: { train?: string; test?: string; layout?: string }) => {
      catalogEntry(name);
      if (!opts.train && !opts.test) throw new TlError(`import-csv ${name}: pass --train FILE and/or --test FILE`);
      const stored = await importCsv(name, { files: { train: opts.train, test: opts.test }, layout: parseLayout(opts.layout) });
      for (const s of stored) console.log(`  added ${s.storedAs} from ${s.source}  (${s.verifiedBy === 'sha256' ? 'identical to the official file' : 'differs from the official file or no checksum known; hash recorded'})`);
    });
}
