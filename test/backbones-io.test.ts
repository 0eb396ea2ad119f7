import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import { initBackend } from '../src/runtime/backend.js';
import { getBackbone, loadBackbone } from '../src/backbones/index.js';
import { writeKerasH5Weights, writeTfjsWeights } from '../src/backbones/weights-write.js';
import { loadLayersModelFromDir } from '../src/models/layers-io.js';
import { tempDir } from './helpers.js';

await initBackend();

function allWeights(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
}

/** Small inputs keep VGG16 and Xception fast on wasm; 71 is Xception's minimum. MobileNetV2's width is read back from the file. */
for (const { name, size } of [{ name: 'vgg16', size: 64 }, { name: 'xception', size: 71 }, { name: 'mobilenetv2', size: 96 }]) {
  test(`${name}: random weights written as tfjs and as Keras .h5 read back identical, with identical outputs`, async (t) => {
    const dir = tempDir('tl-backbone-io-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const original = await loadBackbone({ name, inputShape: [size, size, 3], weights: 'none', seed: 11 });
    const h5File = path.join(dir, `${name}.h5`);
    const tfjsDir = path.join(dir, `${name}-tfjs`);
    await writeKerasH5Weights(original.model, h5File);
    await writeTfjsWeights(original.model, tfjsDir);

    const x = tf.randomUniform([2, size, size, 3], -1, 1, 'float32', 5);
    const expected = (original.model.predict(x) as tf.Tensor).dataSync();
    const want = allWeights(original.model);
    for (const source of [h5File, tfjsDir]) {
      const loaded = await loadBackbone({ name, inputShape: [size, size, 3], weights: source });
      const got = allWeights(loaded.model);
      assert.equal(got.size, want.size);
      for (const [weight, values] of want) assert.deepEqual(got.get(weight), values, `${weight} from ${path.basename(source)}`);
      assert.deepEqual((loaded.model.predict(x) as tf.Tensor).dataSync(), expected);
      assert.equal(loaded.weightsSource, path.resolve(source));
      loaded.model.dispose();
    }
    // The tfjs folder is a whole model that stock tfjs loads as is.
    const stock = await loadLayersModelFromDir(tfjsDir);
    assert.deepEqual((stock.predict(x) as tf.Tensor).dataSync(), expected);
    original.model.dispose();
    stock.dispose();
  });
}

test('the .h5 writer uses the keras.applications save_weights layout', async (t) => {
  const dir = tempDir('tl-backbone-h5-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const model = getBackbone('mobilenet').build({ inputShape: [64, 64, 3], alpha: 0.25 });
  const file = path.join(dir, 'w.h5');
  await writeKerasH5Weights(model, file);
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'r');
  try {
    const layerNames = f.attrs['layer_names']!.value as string[];
    assert.deepEqual(layerNames, model.layers.map((l) => l.name));
    const conv1 = f.get('conv1') as InstanceType<typeof h5wasm.Group>;
    assert.deepEqual(conv1.attrs['weight_names']!.value, ['conv1/kernel:0']);
    const bn = f.get('conv_dw_3_bn') as InstanceType<typeof h5wasm.Group>;
    assert.deepEqual(bn.attrs['weight_names']!.value, ['conv_dw_3_bn/gamma:0', 'conv_dw_3_bn/beta:0', 'conv_dw_3_bn/moving_mean:0', 'conv_dw_3_bn/moving_variance:0']);
    const kernel = f.get('conv_dw_3/conv_dw_3/depthwise_kernel:0') as InstanceType<typeof h5wasm.Dataset>;
    assert.deepEqual(kernel.shape, [3, 3, 32, 1]); // conv_pw_2 gives 128 * 0.25 channels
    assert.equal(kernel.dtype, '<f');
  } finally {
    f.close();
  }
});
