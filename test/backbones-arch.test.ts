import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/runtime/backend.js';
import { backboneNames, getBackbone, loadBackbone } from '../src/backbones/index.js';
import { layerNameMapping } from '../src/backbones/weights-apply.js';
import { TlError } from '../src/util/errors.js';
import type { InputShape } from '../src/backbones/index.js';

await initBackend();

/** include_top=False parameter counts Keras reports (model.count_params()). */
const KERAS_NOTOP_PARAMS: { name: string; alpha?: number; params: number }[] = [
  { name: 'vgg16', params: 14_714_688 },
  { name: 'xception', params: 20_861_480 },
  { name: 'mobilenet', alpha: 1.0, params: 3_228_864 },
  { name: 'mobilenet', alpha: 0.75, params: 1_832_976 },
  { name: 'mobilenet', alpha: 0.5, params: 829_536 },
  { name: 'mobilenet', alpha: 0.25, params: 218_544 },
  { name: 'mobilenetv2', alpha: 1.0, params: 2_257_984 },
  { name: 'mobilenetv2', alpha: 0.35, params: 410_208 },
  { name: 'mobilenetv2', alpha: 1.4, params: 4_363_712 },
];

for (const { name, alpha, params } of KERAS_NOTOP_PARAMS) {
  test(`${name}${alpha === undefined ? '' : ` alpha ${alpha}`} without top has Keras' ${params} parameters`, () => {
    const spec = getBackbone(name);
    const model = spec.build({ inputShape: [spec.minInputSize < 71 ? 96 : 71, spec.minInputSize < 71 ? 96 : 71, 3], alpha });
    assert.equal(model.countParams(), params);
    model.dispose();
  });
}

/** Layer names Keras gives (spot checks across each network, including the weightless ones). */
const KERAS_LAYER_NAMES: Record<string, string[]> = {
  vgg16: ['block1_conv1', 'block1_conv2', 'block1_pool', 'block3_conv3', 'block4_pool', 'block5_conv3', 'block5_pool'],
  xception: [
    'block1_conv1', 'block1_conv1_bn', 'block1_conv1_act', 'block1_conv2_act', 'block2_sepconv1', 'block2_sepconv2_act',
    'block2_pool', 'conv2d', 'batch_normalization', 'conv2d_3', 'batch_normalization_3', 'block4_sepconv1_act',
    'block8_sepconv3_bn', 'block12_sepconv3', 'block13_pool', 'block14_sepconv1_act', 'block14_sepconv2', 'block14_sepconv2_act',
  ],
  mobilenet: [
    'conv1', 'conv1_bn', 'conv1_relu', 'conv_dw_1', 'conv_dw_1_bn', 'conv_dw_1_relu', 'conv_pw_1', 'conv_pad_2', 'conv_pad_4',
    'conv_pad_6', 'conv_pad_12', 'conv_dw_13', 'conv_pw_13_bn', 'conv_pw_13_relu',
  ],
  mobilenetv2: [
    'Conv1', 'bn_Conv1', 'Conv1_relu', 'expanded_conv_depthwise', 'expanded_conv_depthwise_BN', 'expanded_conv_depthwise_relu',
    'expanded_conv_project', 'expanded_conv_project_BN', 'block_1_expand', 'block_1_expand_BN', 'block_1_expand_relu', 'block_1_pad',
    'block_1_depthwise', 'block_2_add', 'block_3_pad', 'block_5_add', 'block_6_pad', 'block_9_add', 'block_12_add', 'block_13_pad',
    'block_15_add', 'block_16_project_BN', 'Conv_1', 'Conv_1_bn', 'out_relu',
  ],
};

for (const name of backboneNames()) {
  test(`${name} layer names match keras.applications and the feature layer is the last one`, () => {
    const spec = getBackbone(name);
    const model = spec.build({ inputShape: [96, 96, 3], alpha: spec.defaultAlpha });
    const names = new Set(model.layers.map((l) => l.name));
    for (const expected of KERAS_LAYER_NAMES[name]!) assert.ok(names.has(expected), `${name} lacks layer ${expected}`);
    assert.equal(model.layers[model.layers.length - 1]!.name, spec.featureLayer);
    model.dispose();
  });
}

test('the classifier tops carry Keras weight names and shapes', () => {
  const mobile = getBackbone('mobilenet').build({ inputShape: [224, 224, 3], alpha: 0.25, includeTop: true });
  assert.deepEqual(mobile.getLayer('conv_preds').getWeights().map((w) => w.shape), [[1, 1, 256, 1000], [1000]]);
  assert.deepEqual(mobile.outputs[0]!.shape, [null, 1000]);
  assert.equal(mobile.countParams(), 475_544);
  mobile.dispose();
  assert.throws(() => getBackbone('xception').build({ inputShape: [150, 150, 3], includeTop: true }), /needs a 299x299 input/);
});

test('MobileNetV2: residual adds exactly where Keras puts them, Keras top, 5x5 features at 150x150 (correct_pad on odd maps)', () => {
  const spec = getBackbone('mobilenetv2');
  const model = spec.build({ inputShape: [150, 150, 3], alpha: 0.35 });
  const adds = model.layers.filter((l) => l.getClassName() === 'Add').map((l) => l.name);
  assert.deepEqual(adds, [2, 4, 5, 7, 8, 9, 11, 12, 14, 15].map((id) => `block_${id}_add`));
  // 75 and 19 are odd: Keras pads them (1,1), like 'same' would.
  assert.deepEqual((model.getLayer('block_1_pad').getConfig() as { padding: unknown }).padding, [[1, 1], [1, 1]]);
  assert.deepEqual(model.outputs[0]!.shape, [null, 5, 5, 1280]);
  assert.equal((model.getLayer('block_5_project_BN').getConfig() as { momentum: number }).momentum, 0.999);
  model.dispose();
  const top = spec.build({ inputShape: [224, 224, 3], alpha: 1.0, includeTop: true });
  assert.equal(top.countParams(), 3_538_984);
  assert.deepEqual(top.getLayer('predictions').getWeights().map((w) => w.shape), [[1280, 1000], [1000]]);
  top.dispose();
  assert.throws(() => spec.build({ inputShape: [96, 96, 3], alpha: 0.25 }), /alpha 0.25 is not supported/);
});

test('MobileNet builds at 150x150 (Keras warns and builds): explicit conv_pad layers make the map 4x4', () => {
  const model = getBackbone('mobilenet').build({ inputShape: [150, 150, 3], alpha: 0.25 });
  assert.deepEqual(model.outputs[0]!.shape, [null, 4, 4, 256]);
  model.dispose();
});

test('inputs below the architecture minimum and unknown names are one-line errors', () => {
  assert.throws(() => getBackbone('xception').build({ inputShape: [64, 64, 3] }), /smaller than the minimum 71x71/);
  assert.throws(() => getBackbone('resnet9000'), (err: Error) => err instanceof TlError && /known backbones: mobilenet, mobilenetv2, vgg16, xception/.test(err.message));
  assert.throws(() => getBackbone('mobilenet').build({ inputShape: [96, 96, 3], alpha: 0.6 }), /alpha 0.6 is not supported/);
});

test('specs carry everything downstream needs: preprocessing, feature layer, default input', () => {
  assert.deepEqual(getBackbone('vgg16').preprocessing, { mode: 'caffe', mean: [103.939, 116.779, 123.68], bgr: true });
  for (const name of ['mobilenet', 'xception']) {
    const p = getBackbone(name).preprocessing;
    assert.ok(p.mode === 'scale' && Math.abs(p.scale * 255 + p.offset - 1) < 1e-9 && p.offset === -1, `${name} maps 0..255 to -1..1`);
  }
  for (const name of backboneNames()) assert.deepEqual(getBackbone(name).defaultInputShape, [150, 150, 3] as InputShape);
});

test('random init is seeded: same seed, same weights; another seed, other weights', async () => {
  const first = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [64, 64, 3], weights: 'none', seed: 7 });
  const again = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [64, 64, 3], weights: 'none', seed: 7 });
  const other = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [64, 64, 3], weights: 'none', seed: 8 });
  const kernel = (m: typeof first) => Array.from(m.model.getLayer('conv_pw_5').getWeights()[0]!.dataSync());
  assert.deepEqual(kernel(first), kernel(again));
  assert.notDeepEqual(kernel(first), kernel(other));
  assert.equal(first.weightsSha256, null);
  assert.match(first.weightsSource, /^none \(random init, seed 7\)$/);
});

test('layers Keras leaves unnamed are paired by order across naming schemes', () => {
  const ours = ['block1_conv1', 'conv2d', 'conv2d_1', 'conv2d_2', 'conv2d_3', 'batch_normalization', 'batch_normalization_1'];
  // Keras 2.0 numbered from 1 in the files keras.applications publishes.
  const keras20 = ['block1_conv1', 'conv2d_1', 'conv2d_2', 'conv2d_3', 'conv2d_4', 'batch_normalization_1', 'batch_normalization_2'];
  const mapping = layerNameMapping(ours, keras20, ['conv2d', 'batch_normalization']);
  assert.equal(mapping.get('conv2d'), 'conv2d_1');
  assert.equal(mapping.get('conv2d_3'), 'conv2d_4');
  assert.equal(mapping.get('batch_normalization_1'), 'batch_normalization_2');
  assert.equal(mapping.get('block1_conv1'), 'block1_conv1');
});
