import tf from './tf.cjs';

/**
 * Fast BatchNormalization training on every backend, with the same maths as stock tfjs.
 *
 * Stock tfjs trains BN slowly, above all on wasm: the FusedBatchNorm gradient tiles 1/sqrt(var) to
 * the full input shape (wasm's Tile is ~50x slower than a broadcasting multiply), every per-channel
 * reduction transposes the whole tensor first, and tfjs-layers' training mode also backpropagates
 * through tf.moments (Mean gradients build full-size `ones`). Here:
 * - training mode is one op with the analytic gradient
 *   dx = gamma*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)), dgamma = sum(dy*xhat), dbeta = sum(dy);
 * - per-channel sums are sums over leading axes (one pass on wasm with src/runtime/wasm-kernels),
 *   never tf.mean, whose wasm kernel transposes the whole tensor first;
 * - inference mode (frozen statistics while x, gamma and beta train: fine-tuning) is three
 *   broadcasting ops, whose autodiff needs no tiles, instead of wasm's slow FusedBatchNorm kernel;
 * - the FusedBatchNorm gradient itself (tf.batchNorm, LayerNormalization) broadcasts per-channel
 *   factors instead of tiling them.
 * Nothing is approximated: only the order of float32 rounding differs from stock (~1e-7 relative).
 */

/** Sum of t over the axes that `paramShape` broadcasts along, shaped like the parameter. */
function sumToParamShape(t: tf.Tensor, paramShape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(paramShape, t.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, paramShape);
}

/**
 * Gradient of the FusedBatchNorm kernel (batchNorm with given mean/variance: BN in inference
 * mode). Same formulas as tfjs-core's, with per-channel factors applied after the reductions and
 * broadcast rather than tiled. Each closure runs only for inputs that need a gradient.
 */
export const fusedBatchNormGradConfig: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy, saved, attrs) => {
    const dyT = dy as tf.Tensor;
    const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
    const rstd = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    const gain = scale == null ? rstd : tf.mul(scale, rstd);
    const reduce = (t: tf.Tensor) => sumToParamShape(t, mean.shape);
    const dyCentered = () => reduce(tf.mul(dyT, tf.sub(x, mean)));
    return {
      x: () => tf.mul(dyT, gain),
      mean: () => tf.neg(tf.mul(reduce(dyT), gain)),
      variance: () => tf.mul(dyCentered(), tf.mul(gain, tf.mul(tf.square(rstd), tf.scalar(-0.5)))),
      scale: () => tf.mul(dyCentered(), rstd),
      offset: () => reduce(dyT),
    };
  },
};

export interface TrainingBatchNorm {
  /** The normalised, scaled and shifted input, shaped like it. */
  y: tf.Tensor;
  /** Batch mean and (biased) batch variance per channel, as tf.moments gives them. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Batch normalisation over every axis but the last, with the batch's own statistics: what
 * tfjs-layers' BatchNormalization computes in training mode, as one differentiable op whose
 * gradient (x, and gamma/beta when given) is analytic. Runs inside the caller's tidy.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor | null, beta: tf.Tensor | null, epsilon: number): TrainingBatchNorm {
  const c = x.shape[x.rank - 1]!;
  const n = x.size / c;
  let stats: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, g, b] = [args[0] as tf.Tensor, gamma ? (args[1] as tf.Tensor) : null, beta ? (args[args.length - 1] as tf.Tensor) : null];
    const x2d = tf.reshape(xIn, [n, c]);
    const mean = tf.div(tf.sum(x2d, 0), n);
    const centered = tf.sub(x2d, mean);
    const variance = tf.div(tf.sum(tf.square(centered), 0), n);
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const scaled = tf.mul(centered, g ? tf.mul(g, rstd) : rstd);
    const y = b ? tf.add(scaled, b) : scaled;
    // The statistics leave the op's scope for the moving averages; the caller's copies are tracked.
    stats = [tf.keep(mean) as tf.Tensor1D, tf.keep(variance) as tf.Tensor1D];
    // xhat = centered * rstd is never materialised: rstd is applied to per-channel sums instead.
    save(g ? [centered, rstd, g] : [centered, rstd]);
    return {
      value: tf.reshape(y, x.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [centeredS, rstdS, gS] = saved as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
        const dy2d = tf.reshape(dy, [n, c]);
        const dBeta = tf.sum(dy2d, 0);
        const dGamma = tf.mul(tf.sum(tf.mul(dy2d, centeredS), 0), rstdS);
        const gain = gS ? tf.mul(gS, rstdS) : rstdS;
        // dx = gain * (dy - mean(dy) - xhat * mean(dy * xhat)), with xhat * k = centered * (rstd * k).
        const meanTerms = tf.add(tf.mul(centeredS, tf.mul(rstdS, tf.div(dGamma, n))), tf.div(dBeta, n));
        const dx = tf.reshape(tf.mul(tf.sub(dy2d, meanTerms), gain), x.shape);
        return [dx, ...(g ? [dGamma] : []), ...(b ? [dBeta] : [])];
      },
    };
  });
  const inputs = [x, gamma, beta].filter((t): t is tf.Tensor => t != null);
  // A named scope labels the op in tf.profile.
  const y = tf.tidy('BatchNormTraining', () => op(...inputs));
  const [mean, variance] = stats!;
  const result = { y, mean: tf.clone(mean), variance: tf.clone(variance) };
  tf.dispose([mean, variance]);
  return result;
}

/**
 * Batch normalisation with given (moving) statistics over the last axis: BN in inference mode.
 * Three broadcasting passes instead of wasm's FusedBatchNorm kernel (~8x slower per element);
 * their autodiff gradients are already broadcasts and leading-axes sums.
 */
export function batchNormInference(
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  gamma: tf.Tensor | null,
  beta: tf.Tensor | null,
  epsilon: number,
): tf.Tensor {
  return tf.tidy(() => {
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const normalized = tf.mul(tf.sub(x, mean), gamma ? tf.mul(gamma, rstd) : rstd);
    return beta ? tf.add(normalized, beta) : normalized;
  });
}

/** The parts of tfjs-layers' BatchNormalization (not exported as a type) this module uses. */
interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}
interface BatchNormalizationLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: LayerVariableLike | null;
  beta?: LayerVariableLike | null;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
}
type CallFn = (this: BatchNormalizationLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/** tfjs-layers' moving-average update, verbatim: v <- v - (v - value) * (1 - momentum). */
function updateMovingAverage(variable: LayerVariableLike, value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const decay = 1 - momentum;
    const original = variable.read();
    const updateDelta = tf.mul(tf.sub(original, value), decay);
    variable.write(tf.sub(original, updateDelta));
  });
}

/** What installFastBatchNorm replaced, for uninstallFastBatchNorm. */
let stockCall: CallFn | undefined;
let stockGradient: tf.GradConfig | undefined;

/**
 * BatchNormalization.call over the last axis (channels-last, every model here): training mode goes
 * through batchNormTraining and updates the moving statistics as tfjs-layers does, inference mode
 * through batchNormInference. Other axes get the stock call.
 */
const fastCall: CallFn = function (inputs, kwargs) {
  const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
  const lastAxis = input != null && (this.axis === -1 || this.axis === input.rank - 1);
  if (!input || !lastAxis) return stockCall!.call(this, inputs, kwargs);
  return tf.tidy(() => {
    const gamma = this.gamma?.read() ?? null;
    const beta = this.beta?.read() ?? null;
    if (!kwargs['training']) {
      return batchNormInference(input, this.movingMean.read(), this.movingVariance.read(), gamma, beta, this.epsilon);
    }
    const { y, mean, variance } = batchNormTraining(input, gamma, beta, this.epsilon);
    updateMovingAverage(this.movingMean, mean, this.momentum);
    updateMovingAverage(this.movingVariance, variance, this.momentum);
    return y;
  });
};

function batchNormalizationPrototype(): { call: CallFn } {
  // The class is not exported; its serialization entry is (building a layer would shift auto-names).
  const entry = tf.serialization.SerializationMap.getMap().classNameMap['BatchNormalization'];
  if (!entry) throw new Error('tfjs-layers BatchNormalization is not registered');
  return entry[0].prototype as unknown as { call: CallFn };
}

/**
 * Make tfjs-layers' BatchNormalization (training and inference mode) and the FusedBatchNorm
 * gradient fast on every backend. Process-wide and backend-independent; idempotent.
 */
export function installFastBatchNorm(): void {
  if (stockCall) return;
  const proto = batchNormalizationPrototype();
  stockGradient = tf.getGradient(tf.FusedBatchNorm);
  stockCall = proto.call;
  tf.registerGradient(fusedBatchNormGradConfig);
  proto.call = fastCall;
}

/** Restore stock tfjs behaviour (benchmarks and tests compare the two in one process). */
export function uninstallFastBatchNorm(): void {
  if (!stockCall) return;
  batchNormalizationPrototype().call = stockCall;
  if (stockGradient) tf.registerGradient(stockGradient);
  stockCall = undefined;
  stockGradient = undefined;
}

export function fastBatchNormInstalled(): boolean {
  return stockCall !== undefined;
}
