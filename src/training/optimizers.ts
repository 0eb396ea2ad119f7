import tf from '../runtime/tf.cjs';
import { ADAM_UPDATE, type AdamHyperparameters, type AdamUpdateAttrs } from '../runtime/wasm-kernels/index.js';

interface OptimizerVariable {
  originalName: string;
  variable: tf.Variable;
}

/** AdamOptimizer's private state, which the fused step keeps exactly as the stock one does. */
interface AdamState extends AdamHyperparameters {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: OptimizerVariable[];
  accumulatedSecondMoment: OptimizerVariable[];
}

/**
 * Adam whose per-variable update is ONE kernel call (wasm) instead of ~15 small ones; on other
 * backends it is tfjs's AdamOptimizer unchanged. Same state (moments, accBeta, iterations), same
 * getWeights/setWeights and serialized class name, same arithmetic up to float32 rounding.
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  static override get className(): string {
    return 'Adam';
  }

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = this as unknown as AdamState;
    const list = Array.isArray(variableGradients)
      ? variableGradients
      : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    const [accBeta1, accBeta2] = [s.accBeta1.dataSync()[0]!, s.accBeta2.dataSync()[0]!];
    const attrs: AdamUpdateAttrs = {
      learningRate: s.learningRate,
      beta1: s.beta1,
      beta2: s.beta2,
      epsilon: s.epsilon,
      correction1: 1 - accBeta1,
      correction2: 1 - accBeta2,
    };
    tf.tidy(() => {
      list.forEach(({ name, tensor: gradient }, i) => {
        const value = tf.engine().registeredVariables[name]!;
        s.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        s.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        if (gradient == null) return;
        const m = s.accumulatedFirstMoment[i]!.variable;
        const v = s.accumulatedSecondMoment[i]!.variable;
        const [value1, m1, v1] = tf.engine().runKernel(ADAM_UPDATE, { value, gradient, m, v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m1!);
        v.assign(v1!);
        value.assign(value1!);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
    });
    this.incrementIterations();
  }
}

/** Drop-in for tf.train.adam: the fused step on wasm, the stock one elsewhere. */
export function adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon?: number): tf.Optimizer {
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon);
}

const CLIP = 1e-7;

export interface ScoredLoss {
  /** Mean sparse categorical cross-entropy, differentiable (use it as minimize's cost). */
  loss: tf.Scalar;
  /** How many rows' top-1 class (first maximum, as tf.argMax) equals the label. */
  correct: number;
}

/**
 * The cross-entropy of softmax outputs against integer labels, probabilities clipped to
 * [1e-7, 1 - 1e-7] like Keras (the same value as the graph-op definition, checked in the tests), and the top-1 hit
 * count. The [batch, classes] probabilities are a few hundred numbers, so value, gradient and
 * accuracy come from one JS pass over them: 2 kernels per step instead of ~30 tiny ones
 * (oneHot, clip, log, mul, sum, mean, their gradients, argMax, equal, cast, sum).
 */
export function sparseCrossEntropy(probs: tf.Tensor, labels: tf.Tensor1D, smoothing = 0, classWeights?: readonly number[]): ScoredLoss {
  const [rows, classes] = probs.shape as [number, number];
  const p = probs.dataSync();
  const y = labels.dataSync();
  const grad = new Float32Array(rows * classes);
  // Label smoothing (Keras' label_smoothing): the target is (1 - e) on the label plus e/K on every class.
  const off = smoothing / classes;
  let sum = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const label = y[r]!;
    const base = r * classes;
    let best = 0;
    for (let c = 1; c < classes; c++) if (p[base + c]! > p[base + best]!) best = c;
    if (best === label) correct++;
    // Keras' class_weight: each row's loss scaled by its true class's weight.
    const weight = classWeights?.[label] ?? 1;
    for (let c = 0; c < classes; c++) {
      const target = (c === label ? 1 - smoothing + off : off) * weight;
      if (target === 0) continue;
      const q = p[base + c]!;
      const clipped = Math.min(Math.max(q, CLIP), 1 - CLIP);
      sum -= target * Math.log(Math.fround(clipped));
      // d/dq of -t log(clip(q))/rows; clipByValue passes the gradient on [min, max] inclusive.
      if (q >= CLIP && q <= 1 - CLIP) grad[base + c] = -target / (rows * q);
    }
  }
  const lossFn = tf.customGrad((...args) => {
    const x = args[0] as tf.Tensor;
    return { value: tf.scalar(sum / rows), gradFunc: (dy: tf.Scalar) => tf.mul(dy, tf.tensor(grad, x.shape)) };
  });
  return { loss: lossFn(probs) as tf.Scalar, correct };
}
