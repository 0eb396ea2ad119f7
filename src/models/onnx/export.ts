import tf from '../../runtime/tf.cjs';
import type { PreprocessingConfig } from '../../data/preprocess.js';
import { ONNX_INPUT, ONNX_OUTPUT } from '../../runtime/engine.js';
import { convActivation, layerGraph } from '../fused.js';
import { isChannelsLastBatchNorm, layerConfig } from '../graph-patterns.js';
import { CONVERTERS, ExportGraph, FOLDS_BATCH_NORM, unsupported, type Value } from './layers.js';
import { OPSET } from './graph.js';
import { TlError } from '../../util/errors.js';

/**
 * tfjs layers model -> ONNX (opset 13). Input and output are what `tl predict` feeds and reads:
 * NHWC float32 [batch, H, W, C] after the run's preprocessing (or raw 0..255 RGB when the
 * preprocessing is baked in), and the model's Keras-shaped output. Every layer becomes ONNX ops
 * through its class's converter; a BatchNormalization right after a conv is folded into it.
 */

export { OPSET };

export interface OnnxExportOptions {
  /** Bake the run's preprocessing into the graph: the model then takes raw 0..255 pixels. */
  preprocessing?: PreprocessingConfig;
  name?: string;
}

/** Raw 0..255 NHWC pixels to model input, as preprocessInto (src/data/preprocess.ts) computes it. */
function preprocessingOps(g: ExportGraph, input: Value, p: PreprocessingConfig, channels: number): Value {
  switch (p.mode) {
    case 'none':
      return input;
    case 'scale': {
      // A per-image choice from the border pixels (dark-on-light photos of handwriting): not a fixed graph.
      if (p.invertLightBackground) throw new TlError('preprocessing invertLightBackground cannot be baked into an ONNX model; export without --with-preprocessing');
      const scaled = g.node('Mul', [input.name, g.scalar(p.scale)], 'pre_scaled');
      return { ...input, name: g.node('Add', [scaled, g.scalar(p.offset)], 'pre_output') };
    }
    case 'caffe': {
      if (channels !== 3) throw new TlError('caffe preprocessing needs 3-channel input');
      // RGB -> BGR, then minus the BGR mean.
      const bgr = g.node('Gather', [input.name, g.int64s('pre_bgr_order', [2, 1, 0])], 'pre_bgr', { axis: { int: 3 } });
      return { ...input, name: g.node('Sub', [bgr, g.floats('pre_mean', Float32Array.from(p.mean), [3])], 'pre_output') };
    }
  }
}

/** The serialized ONNX model of `model` (one input, one output, channels-last). */
export function exportOnnx(model: tf.LayersModel, opts: OnnxExportOptions = {}): Uint8Array {
  const { layerNodes, soleConsumer } = layerGraph(model, 'ONNX export');
  const g = new ExportGraph();
  const inputShape = model.inputs[0]!.shape;
  // Image models ([H, W, C] input), and heads on pooled features ([F] input: a multi-scale run's head).
  if (inputShape.length !== 4 && inputShape.length !== 2) throw new TlError(`model ${model.name}: input of rank ${inputShape.length - 1} cannot be exported to ONNX; only image models ([H, W, C] input) and feature vectors ([F])`);
  const input: Value = { name: g.declare(ONNX_INPUT), rank: inputShape.length, layout: 'keras' };
  g.declare(ONNX_OUTPUT);
  const values = new Map<number, Value>([[model.inputs[0]!.id, opts.preprocessing ? preprocessingOps(g, input, opts.preprocessing, inputShape[3]!) : input]]);

  const absorbed = new Set<number>();
  layerNodes.forEach(({ layer, node }, i) => {
    if (absorbed.has(i)) return;
    const cls = layer.getClassName();
    const converter = CONVERTERS[cls];
    if (!converter) throw unsupported(layer, `layer class ${cls}`);
    let output = node.outputTensors[0]!;
    let batchNorm: tf.layers.Layer | undefined;
    const next = soleConsumer(output.id);
    if (FOLDS_BATCH_NORM.has(cls) && convActivation(layer) === 'linear' && next !== undefined && isChannelsLastBatchNorm(layerNodes[next]!.layer)) {
      batchNorm = layerNodes[next]!.layer;
      output = layerNodes[next]!.node.outputTensors[0]!;
      absorbed.add(next);
    }
    const value = converter(g, {
      layer,
      cls,
      cfg: layerConfig(layer),
      inputs: node.inputTensors.map((t) => values.get(t.id)!),
      inputShape: node.inputTensors[0]!.shape,
      outputShape: output.shape,
      batchNorm,
    });
    values.set(output.id, value);
  });

  const modelOutput = model.outputs[0]!;
  const last = g.keras(values.get(modelOutput.id)!);
  const output = g.nodeTo('Identity', [last.name], ONNX_OUTPUT);
  const dims = (shape: (number | null)[]) => shape.map((d, i) => d ?? (i === 0 ? 'batch' : `d${i}`));
  return g.encode({
    name: opts.name ?? model.name,
    input: { name: ONNX_INPUT, dims: dims(inputShape) },
    output: { name: output, dims: dims(modelOutput.shape) },
    producerVersion: `tfjs-layers ${tf.version.tfjs}`,
    docString: opts.preprocessing ? `input: raw 0..255 pixels; preprocessing ${JSON.stringify(opts.preprocessing)} is in the graph` : 'input: preprocessed pixels',
  });
}
