import tf from '../runtime/tf.cjs';
import { isChannelsLastBatchNorm, layerConfig, reluCap } from './graph-patterns.js';

/**
 * An inference-only compilation of a layers model: every Conv2D / DepthwiseConv2D followed by a
 * BatchNormalization (and a ReLU or ReLU6) becomes ONE fused kernel call with the BatchNorm folded
 * into the kernel and a bias, the way TFLite and PyTorch's inference paths run MobileNet.
 * Layers that match no pattern run as themselves, so any functional model compiles.
 *
 * The frozen base of a transfer run spends nearly all its time in these three-layer chains;
 * unfused, each chain is three full passes over the feature map.
 */
export interface InferencePlan {
  run(x: tf.Tensor): tf.Tensor;
  /** How many conv(+BN)(+activation) chains were fused. */
  readonly fusedChains: number;
  dispose(): void;
}

type FusedActivation = 'linear' | 'relu' | 'relu6';

export interface SymbolicNode {
  inputTensors: tf.SymbolicTensor[];
  outputTensors: tf.SymbolicTensor[];
}

type Step = (inputs: tf.Tensor[]) => tf.Tensor;

interface PlannedStep {
  inputs: number[];
  output: number;
  step: Step;
}

function nodeOf(layer: tf.layers.Layer, computed: Set<number>): SymbolicNode | undefined {
  const nodes = (layer as unknown as { inboundNodes: SymbolicNode[] }).inboundNodes;
  return nodes.find((n) => n.inputTensors.length > 0 && n.inputTensors.every((t) => computed.has(t.id)));
}

/** The activation of a ReLU/Activation layer that the fused kernels apply (plain ReLU or ReLU6). */
function fusableActivation(layer: tf.layers.Layer): FusedActivation | undefined {
  const cap = reluCap(layer);
  return cap === Infinity ? 'relu' : cap === 6 ? 'relu6' : undefined;
}

export function convActivation(layer: tf.layers.Layer): FusedActivation | undefined {
  const act = layerConfig(layer).activation;
  return act === 'linear' || act === 'relu' || act === 'relu6' ? act : undefined;
}

function isFusableConv(layer: tf.layers.Layer): boolean {
  const cls = layer.getClassName();
  const cfg = layerConfig(layer);
  return (cls === 'Conv2D' || cls === 'DepthwiseConv2D') && cfg.dataFormat !== 'channelsFirst' && convActivation(layer) !== undefined;
}

/**
 * Kernel and bias of `conv` with `bn` folded in: y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta
 * = conv'(x) + b', with conv' = conv * s and b' = beta + (b - mean) * s, s = gamma / sqrt(var + eps).
 */
function foldBatchNorm(conv: tf.layers.Layer, bn: tf.layers.Layer | undefined): { kernel: tf.Tensor4D; bias?: tf.Tensor1D } {
  return tf.tidy(() => {
    const [kernel, convBias] = conv.getWeights() as [tf.Tensor4D, tf.Tensor1D?];
    if (!bn) return { kernel: kernel.clone(), bias: convBias?.clone() };
    const cfg = layerConfig(bn);
    const weights = bn.getWeights();
    let i = 0;
    const gamma = cfg.scale === false ? undefined : weights[i++]!;
    const beta = cfg.center === false ? undefined : weights[i++]!;
    const mean = weights[i++]!;
    const variance = weights[i++]!;
    const channels = mean.shape[0]!;
    let s = tf.rsqrt(tf.add(variance, (cfg.epsilon as number | undefined) ?? 1e-3));
    if (gamma) s = tf.mul(s, gamma);
    const isDepthwise = conv.getClassName() === 'DepthwiseConv2D';
    // A depthwise kernel is [kh, kw, in, multiplier]; output channel c*multiplier + m.
    const scaleShape = isDepthwise ? [1, 1, kernel.shape[2], kernel.shape[3]] : [1, 1, 1, channels];
    const folded = tf.mul(kernel, tf.reshape(s, scaleShape)) as tf.Tensor4D;
    let bias = tf.mul(tf.sub(convBias ?? tf.zerosLike(mean), mean), s);
    if (beta) bias = tf.add(bias, beta);
    return { kernel: folded, bias: bias as tf.Tensor1D };
  });
}

function fusedConvStep(conv: tf.layers.Layer, kernel: tf.Tensor4D, bias: tf.Tensor1D | undefined, activation: FusedActivation): Step {
  const cfg = layerConfig(conv);
  const strides = cfg.strides as [number, number];
  const pad = cfg.padding as 'valid' | 'same';
  const dilations = cfg.dilationRate as [number, number];
  if (conv.getClassName() === 'DepthwiseConv2D') {
    return ([x]) => tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter: kernel, strides, pad, dilations, bias, activation });
  }
  return ([x]) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: kernel, strides, pad, dilations, bias, activation });
}

function zeroPaddingStep(layer: tf.layers.Layer): Step | undefined {
  const cfg = layerConfig(layer);
  if (cfg.dataFormat === 'channelsFirst') return undefined;
  const [[top, bottom], [left, right]] = cfg.padding as [[number, number], [number, number]];
  return ([x]) => tf.pad(x!, [[0, 0], [top, bottom], [left, right], [0, 0]]);
}

/** One layer's call in a model, with the graph around it. */
export interface LayerNode {
  layer: tf.layers.Layer;
  node: SymbolicNode;
}

/**
 * The layers of `model` (one input, one output) in an order where every layer's inputs are
 * computed before it, each with the node it is called through, and the single consumer of a
 * tensor where it has one (never past the model's output): what a fusing or exporting pass walks.
 */
export interface LayerGraph {
  layerNodes: LayerNode[];
  /** tensor id -> how many layer calls read it */
  consumers: Map<number, number>;
  soleConsumer: (tensorId: number) => number | undefined;
}

export function layerGraph(model: tf.LayersModel, who: string): LayerGraph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error(`${who}: one input and one output only`);
  const computed = new Set<number>([model.inputs[0]!.id]);
  const layerNodes: LayerNode[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const node = nodeOf(layer, computed);
    if (!node) throw new Error(`${who}: cannot place layer ${layer.name}`);
    layerNodes.push({ layer, node });
    for (const t of node.outputTensors) computed.add(t.id);
  }
  const consumers = new Map<number, number>();
  for (const { node } of layerNodes) for (const t of node.inputTensors) consumers.set(t.id, (consumers.get(t.id) ?? 0) + 1);
  const consumerOf = new Map<number, number>();
  layerNodes.forEach(({ node }, i) => {
    for (const t of node.inputTensors) consumerOf.set(t.id, i);
  });
  const outputId = model.outputs[0]!.id;
  const soleConsumer = (tensorId: number): number | undefined =>
    tensorId !== outputId && consumers.get(tensorId) === 1 ? consumerOf.get(tensorId) : undefined;
  return { layerNodes, consumers, soleConsumer };
}

/** Compile `model` (a functional or sequential layers model with one input and one output). */
export function compileInference(model: tf.LayersModel): InferencePlan {
  const { layerNodes, consumers, soleConsumer } = layerGraph(model, 'compileInference');
  const outputId = model.outputs[0]!.id;

  const owned: tf.Tensor[] = [];
  const steps: PlannedStep[] = [];
  let fusedChains = 0;
  // Layers folded into an earlier conv's step. They need not follow the conv in model.layers
  // (Xception lists a shortcut conv, then the main path, then the shortcut's BatchNorm), so the
  // layers in between are still planned in order.
  const absorbed = new Set<number>();
  for (let i = 0; i < layerNodes.length; i++) {
    if (absorbed.has(i)) continue;
    const { layer, node } = layerNodes[i]!;
    const inputs = node.inputTensors.map((t) => t.id);
    let outputNode = node;
    let step: Step | undefined;
    if (isFusableConv(layer)) {
      let activation = convActivation(layer)!;
      let bn: tf.layers.Layer | undefined;
      let next = soleConsumer(node.outputTensors[0]!.id);
      if (activation === 'linear' && next !== undefined && isChannelsLastBatchNorm(layerNodes[next]!.layer)) {
        bn = layerNodes[next]!.layer;
        outputNode = layerNodes[next]!.node;
        absorbed.add(next);
        next = soleConsumer(outputNode.outputTensors[0]!.id);
      }
      const act = next !== undefined && activation === 'linear' ? fusableActivation(layerNodes[next]!.layer) : undefined;
      if (act) {
        activation = act;
        outputNode = layerNodes[next!]!.node;
        absorbed.add(next!);
      }
      const { kernel, bias } = foldBatchNorm(layer, bn);
      owned.push(kernel, ...(bias ? [bias] : []));
      step = fusedConvStep(layer, kernel, bias, activation);
      fusedChains++;
    } else if (layer.getClassName() === 'ZeroPadding2D') {
      step = zeroPaddingStep(layer);
    }
    step ??= (xs) => layer.apply(xs.length === 1 ? xs[0]! : xs, { training: false }) as tf.Tensor;
    steps.push({ inputs, output: outputNode.outputTensors[0]!.id, step });
  }

  const inputId = model.inputs[0]!.id;
  return {
    fusedChains,
    run(x: tf.Tensor): tf.Tensor {
      return tf.tidy(() => {
        const values = new Map<number, tf.Tensor>([[inputId, x]]);
        const pending = new Map(consumers);
        for (const { inputs, output, step } of steps) {
          values.set(output, step(inputs.map((id) => values.get(id)!)));
          // Free each intermediate as soon as its last consumer has run: peak memory stays a few maps.
          for (const id of inputs) {
            const left = pending.get(id)! - 1;
            pending.set(id, left);
            if (left === 0 && id !== inputId) values.get(id)!.dispose();
          }
        }
        return values.get(outputId)!;
      });
    },
    dispose: () => tf.dispose(owned),
  };
}
