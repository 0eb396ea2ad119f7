import type { Command } from 'commander';
import { listBackbones, type BackboneSpec, type WeightsAsset } from '../../backbones/index.js';
import { assetCacheDir, assetWeightsPath, isAssetCached } from '../../backbones/catalog.js';
import { fetchBackboneWeights } from '../../backbones/fetch.js';
import { TRANSFER_OPTIONS } from '../../training/transfer.js';
import { commanderOption } from '../options.js';

function assetSummary(asset: WeightsAsset) {
  const sizes = asset.files.map((f) => f.bytes);
  const checksum = asset.files.every((f) => f.sha256) ? 'sha256' : asset.files.every((f) => f.md5) ? 'md5' : 'none';
  return {
    id: asset.id,
    ...(asset.alpha === undefined ? {} : { alpha: asset.alpha }),
    includeTop: asset.includeTop,
    format: asset.format,
    files: asset.files.length,
    bytes: sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a! + b!, 0) : null,
    checksum,
    url: asset.files[0]!.url,
    cached: isAssetCached(asset),
    path: isAssetCached(asset) ? assetWeightsPath(asset) : null,
  };
}

function specSummary(spec: BackboneSpec) {
  return {
    name: spec.name,
    description: spec.description,
    featureLayer: spec.featureLayer,
    defaultInputShape: spec.defaultInputShape,
    minInputSize: spec.minInputSize,
    preprocessing: spec.preprocessing,
    ...(spec.alphas ? { alphas: spec.alphas, defaultAlpha: spec.defaultAlpha } : {}),
    weights: Object.values(spec.weights).map(assetSummary),
  };
}

function megabytes(bytes: number | null): string {
  return bytes === null ? '?' : `${(bytes / 1e6).toFixed(1)} MB`;
}

function printList(): void {
  const specs = listBackbones().map(specSummary);
  const idWidth = Math.max(...specs.flatMap((spec) => spec.weights.map((w) => w.id.length)));
  for (const spec of specs) {
    const widths = spec.alphas ? `, alpha ${spec.alphas.join('/')} (default ${spec.defaultAlpha})` : '';
    console.log(`${spec.name}  features at ${spec.featureLayer}, input >= ${spec.minInputSize}px (default ${spec.defaultInputShape.join('x')})${widths}`);
    for (const w of spec.weights) {
      const state = w.cached ? `cached: ${w.path}` : 'not cached';
      console.log(`  ${w.id.padEnd(idWidth)} ${w.format.padEnd(11)} ${w.includeTop ? 'with top' : 'no top  '} ${megabytes(w.bytes).padStart(9)}  ${w.checksum.padEnd(6)} ${state}`);
    }
  }
  console.log('\nFetch with `tl backbones fetch ID` (or --from FILE|DIR for a copy you downloaded).');
}

export function register(program: Command): void {
  const backbones = program.command('backbones').description('pretrained backbones: list the catalog, fetch weights into the cache');
  backbones
    .command('list')
    .description('architectures, their preprocessing and feature layer, and the catalogued ImageNet weights')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      if (opts.json) console.log(JSON.stringify(listBackbones().map(specSummary), null, 2));
      else printList();
    });
  backbones
    .command('fetch')
    .argument('<name>', 'a weights id from `tl backbones list`, or a backbone name (its no-top Keras weights)')
    .description('download (or import with --from) pretrained weights into the cache, checksum-verified')
    .option('--from <path>', 'import a file or folder you downloaded instead of downloading')
    .addOption(commanderOption('alpha', { ...TRANSFER_OPTIONS.alpha, help: 'MobileNet width multiplier when NAME is a backbone name' }))
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { from?: string; alpha?: number; json?: boolean }) => {
      const result = await fetchBackboneWeights(name, { from: opts.from, alpha: opts.alpha, quiet: opts.json });
      if (opts.json) {
        console.log(JSON.stringify({ id: result.asset.id, dir: result.dir, path: assetWeightsPath(result.asset), files: result.files }, null, 2));
        return;
      }
      const added = result.files.filter((f) => f.added).length;
      const how = [...new Set(result.files.map((f) => f.verifiedBy))].join('+');
      console.log(`${result.asset.id}: ${added} file(s) added, ${result.files.length - added} already cached, verified by ${how}`);
      if (how.includes('none')) console.log('  note: no published checksum exists for some files; they were stored unverified');
      console.log(`  ${assetCacheDir(result.asset.id)}`);
    });
}
