import * as tf from '@tensorflow/tfjs';
import { adamUpdateKernel } from './adam.js';
import { batchMatMulOverride } from './batch-matmul.js';
import { conv2dOneChannelOverride, fusedConv2dOneChannelOverride } from './conv2d-c1.js';
import { convReluPoolGradConfig, convReluPoolKernels } from './conv-relu-pool.js';
import { conv2dGradKernels } from './conv2d-grads.js';
import { depthwiseGradKernels } from './depthwise-grads.js';
import { fusedConv2DGradConfig, reluBiasGradKernel } from './fused-conv-grad.js';
import { identityOverride } from './identity.js';
import { maxPoolGradKernel } from './max-pool-grad.js';
import { reluGradConfig, reluGradKernel } from './relu-grad.js';
import { installKernel, installOverride } from './stock.js';
import { sumOverride } from './sum.js';

export { ADAM_UPDATE, type AdamHyperparameters, type AdamUpdateAttrs } from './adam.js';

export { useThreadedWasm } from './threads.js';
export { hasFusedConvGradient } from './fused-conv-grad.js';
export { CONV_RELU_POOL, convReluPoolRuns } from './conv-relu-pool.js';

/**
 * Registers fast, exact kernels for the wasm backend: the convolution gradients
 * (Conv2DBackpropFilter and the depthwise pair, which wasm lacks; Conv2DBackpropInput, whose stock
 * version is ~9x slower than the forward convolution), built from XNNPACK's forward kernels and
 * the SIMD loops of simd.wat; faster MaxPoolGrad, leading-axes Sum, transposed BatchMatMul and
 * Identity; Conv2D of one-channel images; a one-kernel ReLU gradient; a gradient for FusedConv2D
 * (conv + bias + ReLU trained as one kernel) with its one-pass bias/ReLU part; a one-channel
 * conv + ReLU + 2x2 max-pool block with a one-pass gradient; and the fused Adam
 * step of src/training/optimizers.ts.
 * Call before setBackend('wasm'); idempotent.
 */
export function registerWasmKernels(): void {
  for (const config of [...conv2dGradKernels, ...depthwiseGradKernels, ...convReluPoolKernels, maxPoolGradKernel, adamUpdateKernel, reluGradKernel, reluBiasGradKernel]) {
    installKernel(config);
  }
  for (const override of [batchMatMulOverride, sumOverride, identityOverride, conv2dOneChannelOverride, fusedConv2dOneChannelOverride]) {
    installOverride(override);
  }
}

/**
 * The gradients of tl's training kernels: the one-kernel ReLU gradient, FusedConv2D's (which tfjs
 * lacks) and the conv-relu-pool block's. They replace process-wide registrations, so they are
 * registered only while tl trains (runtime/patches.ts), never by backend start-up.
 */
export const TRAINING_GRADIENTS: readonly tf.GradConfig[] = [reluGradConfig, fusedConv2DGradConfig, convReluPoolGradConfig];
