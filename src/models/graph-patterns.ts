import type * as tf from '@tensorflow/tfjs';

/**
 * The layer patterns tl fuses, recognised in one place: the inference plan (fused.ts), the ONNX
 * exporter (onnx/) and the training patches (training/layer-patches.ts) ask these; whether a
 * kernel can run a matched pattern is the kernel's own `...Supports` check.
 */

export function layerConfig(layer: tf.layers.Layer): Record<string, unknown> {
  return layer.getConfig() as Record<string, unknown>;
}

/**
 * The cap of a rectifier: Infinity for ReLU and Activation('relu'), 6 for ReLU6 and
 * Activation('relu6'), a ReLU layer's maxValue otherwise; undefined for anything else.
 */
export function reluCap(layer: tf.layers.Layer): number | undefined {
  const cfg = layerConfig(layer);
  if (layer.getClassName() === 'ReLU') return cfg.negativeSlope || cfg.threshold ? undefined : ((cfg.maxValue as number | null | undefined) ?? Infinity);
  if (layer.getClassName() !== 'Activation') return undefined;
  return cfg.activation === 'relu' ? Infinity : cfg.activation === 'relu6' ? 6 : undefined;
}

/** A BatchNormalization over the last axis of an NHWC tensor (every model here). */
export function isChannelsLastBatchNorm(layer: tf.layers.Layer): boolean {
  const axis = layerConfig(layer).axis;
  return layer.getClassName() === 'BatchNormalization' && (axis === -1 || axis === 3);
}

/** A 2-D max or average pooling layer's window, when it pools channels-last with 'valid' padding. */
export interface ValidPool2D {
  poolSize: [number, number];
  strides: [number, number];
}

export function validPool2D(layer: tf.layers.Layer): ValidPool2D | undefined {
  if (layer.getClassName() !== 'MaxPooling2D' && layer.getClassName() !== 'AveragePooling2D') return undefined;
  const config = layerConfig(layer) as { poolSize?: [number, number]; strides?: [number, number]; padding?: string; dataFormat?: string };
  const { poolSize, strides } = config;
  const plain = config.padding === 'valid' && config.dataFormat === 'channelsLast' && poolSize?.length === 2 && strides?.length === 2;
  return plain ? { poolSize, strides } : undefined;
}

interface GraphNode {
  inputTensors: tf.SymbolicTensor[];
  outboundLayer: tf.layers.Layer;
}

type Linked = { inboundNodes: GraphNode[]; outboundNodes: GraphNode[] };

/** The one layer that consumes `layer`'s output, when `layer` is called once, used once, and that consumer is called once. */
export function soleConsumer(layer: tf.layers.Layer): tf.layers.Layer | undefined {
  const { inboundNodes, outboundNodes } = layer as unknown as Linked;
  if (inboundNodes.length !== 1 || outboundNodes.length !== 1) return undefined;
  const next = outboundNodes[0]!.outboundLayer;
  return (next as unknown as Linked).inboundNodes.length === 1 ? next : undefined;
}

/** The tensor `layer` is called on, when it is called once on one input. */
export function soleInput(layer: tf.layers.Layer): tf.SymbolicTensor | undefined {
  const { inboundNodes } = layer as unknown as Linked;
  return inboundNodes.length === 1 && inboundNodes[0]!.inputTensors.length === 1 ? inboundNodes[0]!.inputTensors[0] : undefined;
}
