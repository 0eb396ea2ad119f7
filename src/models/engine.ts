import tf from '../runtime/tf.cjs';
import { chooseEngine, onnxEngine, tfjsEngine, type EngineName, type InferenceEngine } from '../runtime/engine.js';
import { compileInference } from './fused.js';
import { exportOnnx } from './onnx/export.js';

function inputShapeOf(model: tf.LayersModel): number[] {
  return model.inputs[0]!.shape.slice(1) as number[];
}

/** tfjs running `model` through its fused inference plan (conv + BatchNorm + activation as one kernel). */
export function tfjsEngineForModel(model: tf.LayersModel): Promise<InferenceEngine> {
  return tfjsEngine(compileInference(model), inputShapeOf(model));
}

/** The chosen engine for an in-memory layers model (exported to ONNX on the fly for onnxruntime). */
export async function engineForModel(model: tf.LayersModel): Promise<InferenceEngine> {
  if ((await chooseEngine()) === 'tfjs') return tfjsEngineForModel(model);
  return onnxEngine(exportOnnx(model), inputShapeOf(model));
}

/** An engine over a model with several outputs. */
export interface MultiOutputEngine {
  readonly name: EngineName;
  /** One NHWC float32 batch of model input -> each output, [batch, ...its shape] row-major. */
  run(x: Float32Array, batch: number): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

/**
 * The chosen engine for a layers model with any number of outputs. Engines run one-output graphs,
 * so the outputs are flattened and concatenated into one row per image, and cut apart again here.
 */
export async function multiOutputEngine(model: tf.LayersModel): Promise<MultiOutputEngine> {
  const sizes = model.outputs.map((o) => tf.util.sizeFromShape(o.shape.slice(1) as number[]));
  const flat = model.outputs.map((o) => (o.shape.length > 2 ? (tf.layers.flatten().apply(o) as tf.SymbolicTensor) : o));
  const packed = flat.length === 1 ? flat[0]! : (tf.layers.concatenate({ axis: -1 }).apply(flat) as tf.SymbolicTensor);
  const engine = await engineForModel(tf.model({ inputs: model.inputs, outputs: packed }));
  const row = sizes.reduce((a, b) => a + b, 0);
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  return {
    name: engine.name,
    async run(x, batch) {
      const rows = await engine.run(x, batch);
      return sizes.map((size, i) => {
        const out = new Float32Array(batch * size);
        for (let b = 0; b < batch; b++) out.set(rows.subarray(b * row + offsets[i]!, b * row + offsets[i]! + size), b * size);
        return out;
      });
    },
    dispose: () => engine.dispose(),
  };
}
