import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../src/runtime/backend.js';
import { loadBackbone } from '../src/backbones/index.js';
import { shared, tempDir, tlBin } from './helpers.js';

const H5_025 = shared('backbones', 'mobilenet_v1_0.25_224_notop_keras_h5', 'mobilenet_2_5_224_tf_no_top.h5');
const TFJS_025 = shared('backbones', 'mobilenet_v1_0.25_224');

function tl(home: string, ...args: string[]) {
  return spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env: { ...process.env, TL_HOME: home } });
}

test('tl backbones list --json shows each architecture with its preprocessing, feature layer and catalogued weights', () => {
  const home = tempDir('tl-home-');
  try {
    const r = tl(home, 'backbones', 'list', '--json');
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { name: string; featureLayer: string; preprocessing: { mode: string }; weights: { id: string; cached: boolean; url: string }[] }[];
    assert.deepEqual(list.map((b) => b.name), ['mobilenet', 'mobilenetv2', 'vgg16', 'xception']);
    const v2 = list.find((b) => b.name === 'mobilenetv2')!;
    assert.equal(v2.featureLayer, 'out_relu');
    assert.ok(v2.weights.some((w) => w.url.endsWith('/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5')));
    const vgg = list.find((b) => b.name === 'vgg16')!;
    assert.equal(vgg.featureLayer, 'block5_pool');
    assert.equal(vgg.preprocessing.mode, 'caffe');
    assert.ok(vgg.weights.some((w) => w.url.endsWith('/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5') && !w.cached));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('tl backbones fetch --from imports checksum-verified weights that --weights imagenet then finds', async (t) => {
  const home = tempDir('tl-home-');
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const wrong = tl(home, 'backbones', 'fetch', 'vgg16', '--from', H5_025);
  assert.notEqual(wrong.status, 0);
  assert.equal(wrong.stderr.trim().split('\n').length, 1);
  assert.match(wrong.stderr, /^tl: .*mobilenet_2_5_224_tf_no_top\.h5: .*is 2108140 bytes, expected 58889256/);

  const ok = tl(home, 'backbones', 'fetch', 'mobilenet', '--alpha', '0.25', '--from', H5_025, '--json');
  assert.equal(ok.status, 0, ok.stderr);
  const fetched = JSON.parse(ok.stdout) as { id: string; path: string; files: { verifiedBy: string; added: boolean }[] };
  assert.equal(fetched.id, 'mobilenet-0.25-notop');
  assert.deepEqual(fetched.files, [{ name: 'mobilenet_2_5_224_tf_no_top.h5', verifiedBy: 'sha256', added: true }]);

  const folder = tl(home, 'backbones', 'fetch', 'mobilenet-0.25-tfjs', '--from', TFJS_025);
  assert.equal(folder.status, 0, folder.stderr);
  assert.match(folder.stdout, /mobilenet-0.25-tfjs: 56 file\(s\) added/);

  await initBackend();
  const previous = process.env.TL_HOME;
  process.env.TL_HOME = home;
  try {
    const loaded = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [96, 96, 3], weights: 'imagenet' });
    assert.equal(path.dirname(loaded.weightsSource), path.join(home, 'backbones', 'mobilenet-0.25-notop'));
    assert.equal(loaded.weightsSha256, 'dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf');
    await assert.rejects(loadBackbone({ name: 'mobilenet', alpha: 0.75, weights: 'imagenet' }), /no ImageNet weights for mobilenet alpha 0.75 in the cache; run `tl backbones fetch mobilenet-0.75-notop` \(or mobilenet-0.75-tfjs\)/);
  } finally {
    if (previous === undefined) delete process.env.TL_HOME;
    else process.env.TL_HOME = previous;
  }
});
