// The ABI of simd.wat on its own, so the pool that runs these loops on helper threads
// and the module that instantiates them both depend on it rather than on each other.
/** The loops of simd.wat; every pointer is a byte offset on the backend's heap. */
export interface SimdKernels {
  relu_grad(x: number, dy: number, out: number, n: number): void;
  /** out = lo <= x <= hi ? dy : 0: clipByValue's gradient. */
  clip_grad(x: number, dy: number, out: number, n: number, lo: number, hi: number): void;
  /** min(max(x*scale + shift, 0), cap) per channel, C % 4 == 0; see simd.wat. */
  affine_relu(x: number, scale: number, shift: number, out: number, rows: number, channels: number, cap: number): void;
  /** affine_relu's dx and per-channel sums of dz and dz*(x - mean) (scratch 24*C bytes); see simd.wat. */
  affine_relu_grad(
    x: number, dy: number, scale: number, shift: number, mean: number, dx: number, dzSum: number, dzCenteredSum: number,
    rows: number, channels: number, cap: number, scratch: number,
  ): void;
  sum_rows(src: number, dst: number, rows: number, width: number, scratch: number): void;
  /** dz = y > 0 ? dy : 0 and db its column sums over rows x channels (C % 4 == 0; scratch 8*C bytes); see simd.wat. */
  relu_bias_grad(y: number, dy: number, dz: number, db: number, rows: number, channels: number, scratch: number): void;
  adam(
    w: number, g: number, m: number, v: number, w1: number, m1: number, v1: number, n: number,
    beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number,
    correction1: number, correction2: number, epsilon: number, negLearningRate: number,
  ): void;
  max_pool_grad(
    x: number, dy: number, dx: number, batch: number, inH: number, inW: number, channels: number,
    outH: number, outW: number, filterH: number, filterW: number, strideH: number, strideW: number,
    padTop: number, padLeft: number, overlap: number, zero: number,
  ): void;
  /** dst[b, c, r] = src[b, r, c] for `batch` [rows, cols] matrices, rows % 4 == 0, cols % 4 == 0; see simd.wat. */
  transpose_2d(src: number, dst: number, batch: number, rows: number, cols: number): void;
  /** Patch matrix [(bTo-bFrom)*OH*OW, KH*KW*C] of NHWC x (C % 4 == 0), rows in dy's order, for gemm_tn; see simd.wat. */
  im2col(
    x: number, out: number, channels: number, inH: number, inW: number, outH: number, outW: number,
    kernelH: number, kernelW: number, strideH: number, strideW: number, dilationH: number, dilationW: number,
    padTop: number, padLeft: number, bFrom: number, bTo: number,
  ): void;
  /** c[M, N] (+)= a^T b for row-major a [rows, M], b [rows, N], M % 4 == 0, N % 4 == 0 (c zeroed first if `zero`); see simd.wat. */
  gemm_tn(a: number, b: number, c: number, rows: number, m: number, n: number, zero: number): void;
  /** MaxPoolGrad of 2x2 windows at stride 2, no padding, C % 4 == 0; see simd.wat. */
  max_pool_grad_2x2(x: number, dy: number, dx: number, batch: number, inH: number, inW: number, channels: number, outH: number, outW: number, zero: number): void;
  /** Scatter-adds a patch matrix back into the image it was cut from (x zeroed first); see simd.wat. */
  col2im(
    x: number, cols: number, batch: number, inH: number, inW: number, channels: number, outH: number, outW: number,
    kernelH: number, kernelW: number, strideH: number, strideW: number, dilationH: number, dilationW: number,
    padTop: number, padLeft: number,
  ): void;
  /** Transposed patch matrix [KH*KW*C, (bTo-bFrom)*OH*OW] of NHWC x, for images bFrom..bTo; see simd.wat. */
  im2col_t(
    x: number, out: number, channels: number, inH: number, inW: number, outH: number, outW: number,
    kernelH: number, kernelW: number, strideH: number, strideW: number, dilationH: number, dilationW: number,
    padTop: number, padLeft: number, bFrom: number, bTo: number,
  ): void;
  /**
   * 3x3 convolution of an unpadded one-channel NHWC image, dilation 1, Co % 4 == 0, plus a bias,
   * then max(floor, .): floor 0 is a fused ReLU, -Infinity none; see simd.wat.
   */
  conv2d_c1(
    x: number, w: number, out: number, batch: number, inH: number, inW: number, outH: number, outW: number,
    outChannels: number, strideH: number, strideW: number, bias: number, floor: number,
  ): void;
  /** conv2d_c1 (stride 1) + bias + ReLU + 2x2 max pool at stride 2: pooled and argmax (i32, 0..3); see simd.wat. */
  conv2d_c1_relu_pool(
    x: number, w: number, bias: number, pooled: number, argmax: number, batch: number, inH: number, inW: number,
    pooledH: number, pooledW: number, outChannels: number,
  ): void;
  /** Filter and bias gradients of conv2d_c1_relu_pool from dpooled, pooled and argmax; see simd.wat. */
  conv2d_c1_relu_pool_grad(
    x: number, dpooled: number, pooled: number, argmax: number, dw: number, db: number, batch: number, inH: number, inW: number,
    pooledH: number, pooledW: number, outChannels: number,
  ): void;
  /** Filter gradient of conv2d_c1 (same layout and limits); see simd.wat. */
  conv2d_c1_filter_grad(
    x: number, dy: number, dw: number, batch: number, inH: number, inW: number, outH: number, outW: number,
    outChannels: number, strideH: number, strideW: number,
  ): void;
  /** Depthwise dx gathered per input pixel through tap tables (geometry.ts tapTable); see simd.wat. */
  depthwise_input_grad(
    dy: number, w: number, dx: number, rows: number, cols: number, batch: number, inH: number, inW: number,
    channels: number, outH: number, outW: number, kernelH: number, kernelW: number,
  ): void;
  /** Depthwise dW, channel multiplier 1, channels % 4 == 0; see simd.wat. */
  depthwise_filter_grad(
    x: number, dy: number, dw: number, batch: number, inH: number, inW: number, channels: number, outH: number, outW: number,
    kernelH: number, kernelW: number, strideH: number, strideW: number, dilationH: number, dilationW: number,
    padTop: number, padLeft: number,
  ): void;
}
