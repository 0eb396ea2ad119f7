import tf from '../tf.cjs';
import { adamUpdateKernel } from './adam.js';
import { affineReluKernels } from './affine-relu.js';
import { batchMatMulOverride } from './batch-matmul.js';
import { conv2dOneChannelOverride, fusedConv2dOneChannelOverride } from './conv2d-c1.js';
import { convReluPoolGradConfig, convReluPoolKernels } from './conv-relu-pool.js';
import { conv2dGradKernels } from './conv2d-grads.js';
import { depthwiseGradKernels } from './depthwise-grads.js';
import { fusedConv2DGradConfig, reluBiasGradKernel } from './fused-conv-grad.js';
import { castOverride, identityOverride } from './identity.js';
import { maxPoolGradKernel } from './max-pool-grad.js';
import { clipGradConfig, clipGradKernel, reluGradConfig, reluGradKernel } from './relu-grad.js';
import { installKernel, installOverride } from './stock.js';
import { sliceOverride } from './slice.js';
import { sumGradConfig, sumOverride } from './sum.js';
import { transposeOverride } from './transpose.js';

export { ADAM_UPDATE, type AdamHyperparameters, type AdamUpdateAttrs } from './adam.js';

export { useThreadedWasm } from './threads.js';
export { hasFusedConvGradient, fusedConvSupports } from './fused-conv-grad.js';
export { CONV_RELU_POOL, convReluPoolRuns, convReluPoolSupports } from './conv-relu-pool.js';
export { batchNormRelu, hasAffineRelu, affineReluSupports } from './affine-relu.js';

/**
 * Registers fast, exact kernels for the wasm backend: the convolution gradients
 * (Conv2DBackpropFilter and the depthwise pair, which wasm lacks; Conv2DBackpropInput, whose stock
 * version is ~9x slower than the forward convolution), built from XNNPACK's forward kernels and
 * the SIMD loops of simd.wat; faster MaxPoolGrad, leading-axes Sum, BatchMatMul (transposed operands
 * and new wide weights), Transpose of the last two axes,
 * float32 Slice, Identity and same-dtype Cast (both share the input); Conv2D of one-channel images; one-kernel ReLU and clipByValue gradients; a gradient for FusedConv2D
 * (conv + bias + ReLU trained as one kernel) with its one-pass bias/ReLU part; a one-channel
 * conv + ReLU + 2x2 max-pool block with a one-pass gradient; BatchNorm on frozen statistics + ReLU
 * (affine-relu.ts) in one pass each way; and the fused Adam
 * step of src/training/optimizers.ts.
 * Call before setBackend('wasm'); idempotent.
 */
export function registerWasmKernels(): void {
  for (const config of [...conv2dGradKernels, ...depthwiseGradKernels, ...convReluPoolKernels, ...affineReluKernels, maxPoolGradKernel, adamUpdateKernel, reluGradKernel, clipGradKernel, reluBiasGradKernel]) {
    installKernel(config);
  }
  for (const override of [batchMatMulOverride, transposeOverride, sumOverride, sliceOverride, identityOverride, castOverride, conv2dOneChannelOverride, fusedConv2dOneChannelOverride]) {
    installOverride(override);
  }
}

/**
 * The gradients of tl's training kernels: the one-kernel ReLU and clipByValue (ReLU6) gradients, FusedConv2D's (which tfjs
 * lacks), the conv-relu-pool block's, and Sum's without a ones tensor filled in JavaScript. They replace process-wide registrations, so they are
 * registered only while tl trains (runtime/patches.ts), never by backend start-up.
 */
export const TRAINING_GRADIENTS: readonly tf.GradConfig[] = [reluGradConfig, clipGradConfig, fusedConv2DGradConfig, convReluPoolGradConfig, sumGradConfig];
