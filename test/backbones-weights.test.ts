import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { assignWeights, getBackbone, loadBackbone, parseWeightsSource, readWeightsFile } from '../src/backbones/index.js';
import { mobilenet } from '../src/backbones/mobilenet.js';
import { loadLayersModelFromDir } from '../src/models/layers-io.js';
import { decodeImage } from '../src/data/images.js';
import { imagesToTensor } from '../src/data/preprocess.js';
import { TlError } from '../src/util/errors.js';
import { shared, tempDir } from './helpers.js';

await initBackend();

const TFJS_025 = shared('backbones', 'mobilenet_v1_0.25_224');
const TFJS_075 = shared('backbones', 'mobilenet_v1_0.75_224');
const H5_025 = shared('backbones', 'mobilenet_v1_0.25_224_notop_keras_h5', 'mobilenet_2_5_224_tf_no_top.h5');
const TM_V2_035 = shared('backbones', 'mobilenet_v2_0.35_224_tm_export');

/** The first photo of each of a few flower classes. */
function photos(count: number): string[] {
  const root = shared('datasets', 'oxford-flowers-5', 'test');
  return readdirSync(root)
    .sort()
    .slice(0, count)
    .map((cls) => path.join(root, cls, readdirSync(path.join(root, cls)).sort()[0]!));
}

async function batch(files: string[], size: number): Promise<tf.Tensor4D> {
  const images = await Promise.all(files.map((f) => decodeImage(f, { size: [size, size], channels: 3 })));
  return imagesToTensor(images, getBackbone('mobilenet').preprocessing);
}

test('MobileNet 0.25 from the tfjs folder and from the Keras .h5 gives bit-identical features on a real photo', async () => {
  const fromTfjs = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [150, 150, 3], weights: TFJS_025 });
  const fromH5 = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [150, 150, 3], weights: H5_025 });
  // Both files were saved by Keras <= 2.1 ('same' padding, no conv_pad layers): at 150 the odd
  // 75x75 map is padded as they were trained, giving 5x5 where Keras >= 2.2 padding gives 4x4.
  assert.equal(fromTfjs.model.outputs[0]!.shape.join(','), ',5,5,256');
  assert.ok(!fromTfjs.model.layers.some((l) => l.name.startsWith('conv_pad_')));
  const modern = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [150, 150, 3], weights: 'none' });
  assert.equal(modern.model.outputs[0]!.shape.join(','), ',4,4,256');
  modern.model.dispose();
  const x = await batch(photos(1), 150);
  const a = (fromTfjs.model.predict(x) as tf.Tensor).dataSync();
  const b = (fromH5.model.predict(x) as tf.Tensor).dataSync();
  assert.equal(a.length, 5 * 5 * 256);
  assert.ok(a.some((v) => v > 0), 'features are not all zero');
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.equal(fromH5.weightsSha256, 'dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf');
  assert.match(fromTfjs.weightsSha256 ?? '', /^[0-9a-f]{64}$/);
});

test('MobileNet 0.75 with its top: ImageNet top-1 from this architecture equals stock tf.loadLayersModel on real photos', async () => {
  const spec = getBackbone('mobilenet');
  const ours = spec.build({ inputShape: [224, 224, 3], alpha: 0.75, includeTop: true });
  // The Keras 2.1 file has no conv_pad layers and names its top differently; weights map by name.
  assignWeights(ours, await readWeightsFile(TFJS_075), { fitsWhat: 'mobilenet alpha 0.75' });
  const stock = await loadLayersModelFromDir(TFJS_075);
  const x = await batch(photos(3), 224);
  const top1 = (m: tf.LayersModel) => Array.from((m.predict(x) as tf.Tensor).argMax(-1).dataSync());
  const probs = (ours.predict(x) as tf.Tensor).max(-1).dataSync();
  assert.deepEqual(top1(ours), top1(stock));
  assert.ok(Math.max(...probs) > 0.2, `a confident ImageNet prediction on a flower photo (max p ${Math.max(...probs)})`);
  const diff = tf.sub(ours.predict(x) as tf.Tensor, stock.predict(x) as tf.Tensor).abs().max().dataSync()[0]!;
  assert.ok(diff < 1e-4, `probabilities agree (max |diff| ${diff})`);
});

test('MobileNetV2 0.35 from a Teachable Machine export: width from the file, features equal to the export\'s own inner Keras model', async () => {
  // The export is Sequential[Sequential[model2 (Keras MobileNetV2 to out_relu), GAP], user head]:
  // weights are named <layer>/<weight> as Keras names them, the head is ignored, and Conv1_pad
  // (older Keras) is weightless.
  const ours = await loadBackbone({ name: 'mobilenetv2', inputShape: [224, 224, 3], weights: TM_V2_035 });
  assert.equal(ours.alpha, 0.35);
  assert.equal(ours.weightsSha256, '871179f09e824817dc433bda185c0a51e6706466f088745e8d51b49a9126ee04');
  const exported = await loadLayersModelFromDir(TM_V2_035);
  const inner = (exported.layers[0] as tf.Sequential).layers[0] as tf.LayersModel;
  assert.equal(inner.outputs[0]!.shape.join(), ',7,7,1280');
  const x = await batch(photos(3), 224);
  const diff = tf.sub(ours.model.predict(x) as tf.Tensor, inner.predict(x) as tf.Tensor).abs().max().dataSync()[0]!;
  assert.ok(diff < 1e-5, `features agree (max |diff| ${diff})`);
  await assert.rejects(loadBackbone({ name: 'mobilenetv2', alpha: 0.5, inputShape: [96, 96, 3], weights: TM_V2_035 }), (err: Error) => {
    assert.ok(err instanceof TlError && !err.message.includes('\n'), err.message);
    assert.match(err.message, /tm_export: layer block_1_project weight kernel expected shape \[1,1,48,16\], found \[1,1,48,8\]; this file does not hold mobilenetv2 alpha 0.5 weights/);
    return true;
  });
  await assert.rejects(loadBackbone({ name: 'mobilenet', inputShape: [96, 96, 3], weights: TM_V2_035 }), /tm_export: layer conv1 weight kernel expected shape \[3,3,3,32\], found none; this file does not hold mobilenet alpha 1 weights/);
});

test('without --alpha the width follows from the weights file\'s conv1 kernel, and one model is built', async () => {
  const build = mobilenet.build;
  let builds = 0;
  mobilenet.build = (opts) => (builds++, build(opts));
  try {
    const loaded = await loadBackbone({ name: 'mobilenet', inputShape: [96, 96, 3], weights: H5_025 });
    assert.equal(loaded.alpha, 0.25);
    assert.deepEqual(loaded.model.outputs[0]!.shape, [null, 3, 3, 256]);
    const wider = await loadBackbone({ name: 'mobilenet', inputShape: [96, 96, 3], weights: TFJS_075 });
    assert.equal(wider.alpha, 0.75);
    assert.equal(builds, 2, 'one model per load, not one per width tried');
  } finally {
    mobilenet.build = build;
  }
  const none = await loadBackbone({ name: 'mobilenet', inputShape: [96, 96, 3], weights: 'none' });
  assert.equal(none.alpha, 1.0);
});

test('--weights is parsed once: none, imagenet, a catalog id (never hidden by a folder of that name), or a file with its format', async () => {
  assert.deepEqual(await parseWeightsSource('none'), { kind: 'none' });
  assert.deepEqual(await parseWeightsSource('imagenet'), { kind: 'imagenet' });
  assert.deepEqual(await parseWeightsSource(H5_025), { kind: 'file', path: H5_025, format: 'keras-h5' });
  assert.deepEqual(await parseWeightsSource(TFJS_025), { kind: 'file', path: TFJS_025, format: 'tfjs-layers' });
  const cwd = process.cwd();
  process.chdir(tempDir('tl-weights-cwd-'));
  try {
    mkdirSync('mobilenet-0.25-notop');
    const source = await parseWeightsSource('mobilenet-0.25-notop');
    assert.equal(source.kind, 'catalog');
    assert.deepEqual(await parseWeightsSource('./mobilenet-0.25-notop'), { kind: 'file', path: './mobilenet-0.25-notop', format: 'tfjs-layers' });
  } finally {
    process.chdir(cwd);
  }
  await assert.rejects(parseWeightsSource('no/such/file.h5'), /^TlError: weights "no\/such\/file.h5" not found: use none, imagenet, a catalog id/);
  await assert.rejects(loadBackbone({ name: 'vgg16', weights: 'mobilenet-0.25-notop' }), /weights "mobilenet-0.25-notop" are for mobilenet, not vgg16/);
  await assert.rejects(loadBackbone({ name: 'mobilenet', alpha: 0.5, weights: 'mobilenet-0.25-notop' }), /are for alpha 0.25, not --alpha 0.5/);
});

test('a weights file for another architecture or width fails with one line naming layer, shapes and file', async () => {
  await assert.rejects(loadBackbone({ name: 'mobilenet', alpha: 0.5, inputShape: [96, 96, 3], weights: H5_025 }), (err: Error) => {
    assert.ok(err instanceof TlError);
    assert.equal(err.message.split('\n').length, 1);
    assert.match(err.message, /mobilenet_2_5_224_tf_no_top\.h5: layer conv1 weight kernel expected shape \[3,3,3,16\], found \[3,3,3,8\]; this file does not hold mobilenet alpha 0.5 weights/);
    return true;
  });
  await assert.rejects(loadBackbone({ name: 'mobilenet', inputShape: [96, 96, 3], weights: shared('backbones', 'mobilenet_v1_0.25_224_graph_tfhub') }), /mobilenet_v1_0.25_224_graph_tfhub: is a TensorFlow.js graph model/);
  await assert.rejects(loadBackbone({ name: 'vgg16', inputShape: [64, 64, 3], weights: TFJS_025 }), /mobilenet_v1_0.25_224: layer block1_conv1 weight kernel expected shape \[3,3,3,64\], found none; this file does not hold vgg16 weights/);
  await assert.rejects(loadBackbone({ name: 'mobilenet', weights: path.join(TFJS_025, 'PROVENANCE.md') }), /PROVENANCE.md: is not an HDF5 file/);
});
