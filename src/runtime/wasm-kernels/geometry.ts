/**
 * Index arithmetic for gradients of a strided/dilated convolution along one spatial axis, shared
 * by Conv2D and DepthwiseConv2dNative. Forward (one axis, pad `padBefore`):
 *   y[o] = sum_k x[o*stride + k*dilation - padBefore] * w[k]
 */
export interface AxisConv {
  inSize: number;
  outSize: number;
  kernel: number;
  stride: number;
  dilation: number;
  padBefore: number;
}

/**
 * dx as stride-1 convolutions of dy ("sub-pixel" transposed convolution). Input position
 * q = i + padBefore = m*stride + phase receives taps k = phase + j*stride, so every phase is a
 * stride-1 convolution over m with the flipped sub-filter w[phase + (taps-1-j)*stride]; the
 * phases are interleaved afterwards (depth-to-space) and the result cropped to the input.
 */
export interface InputGradAxis {
  /** Taps of each phase's flipped sub-filter. */
  taps: number;
  /** Zeros before/after dy (the stride-1 convolution's explicit padding), never negative. */
  padBefore: number;
  padAfter: number;
  /** Rows of dy dropped before/after, when the forward padding put them outside every input row. */
  cropBefore: number;
  cropAfter: number;
  /** Outputs per phase; after interleaving, `phaseOutputs*stride` rows from which the input is cut. */
  phaseOutputs: number;
  /** First interleaved row that is input row 0. */
  offset: number;
}

export function inputGradAxis(a: AxisConv): InputGradAxis {
  if (a.stride > 1 && a.dilation > 1) {
    throw new Error(`stride ${a.stride} together with dilation ${a.dilation} is not supported; one of them must be 1`);
  }
  const taps = Math.ceil(a.kernel / a.stride);
  const firstM = Math.floor(a.padBefore / a.stride);
  const lastM = Math.floor((a.padBefore + a.inSize - 1) / a.stride);
  const phaseOutputs = lastM - firstM + 1;
  const span = (taps - 1) * a.dilation;
  const before = span - firstM;
  const after = phaseOutputs + span - a.outSize - before;
  return {
    taps,
    padBefore: Math.max(0, before),
    padAfter: Math.max(0, after),
    cropBefore: Math.max(0, -before),
    cropAfter: Math.max(0, -after),
    phaseOutputs,
    offset: a.padBefore - firstM * a.stride,
  };
}

/** Kernel tap of phase `phase`, sub-filter tap `j` (flipped), or -1 where the sub-filter is zero. */
export function flippedTap(a: AxisConv, taps: number, phase: number, j: number): number {
  const k = phase + (taps - 1 - j) * a.stride;
  return k < a.kernel ? k : -1;
}

/**
 * dW as a convolution of x with dy as the filter: output position k (a kernel tap) sums
 * x[k*dilation + o*stride - padBefore] * dy[o] over o, i.e. "stride" dilation and "dilation"
 * stride. Padding after x makes room for every tap; extra outputs are cut off.
 */
export interface FilterGradAxis {
  padAfter: number;
  /** Output length of that convolution, >= kernel. */
  length: number;
}

export function filterGradAxis(a: AxisConv): FilterGradAxis {
  const needed = (a.kernel - 1) * a.dilation + (a.outSize - 1) * a.stride + 1;
  const padAfter = Math.max(0, needed - a.inSize - a.padBefore);
  const padded = a.padBefore + a.inSize + padAfter;
  const length = Math.floor((padded - ((a.outSize - 1) * a.stride + 1)) / a.dilation) + 1;
  return { padAfter, length };
}

/**
 * For a phase filter of taps.rows x taps.cols per phase: entry ((jh*tapsCols + jw)*phases + phase)
 * is the kernel tap kh*kernelCols + kw it copies, or -1 where the sub-filter is zero.
 * phase = phaseRow*strideCols + phaseCol.
 */
export function phaseTaps(rows: AxisConv, cols: AxisConv, tapsRows: number, tapsCols: number): Int32Array {
  const phases = rows.stride * cols.stride;
  const table = new Int32Array(tapsRows * tapsCols * phases);
  for (let jh = 0; jh < tapsRows; jh++) {
    for (let jw = 0; jw < tapsCols; jw++) {
      for (let ph = 0; ph < rows.stride; ph++) {
        for (let pw = 0; pw < cols.stride; pw++) {
          const kh = flippedTap(rows, tapsRows, ph, jh);
          const kw = flippedTap(cols, tapsCols, pw, jw);
          table[(jh * tapsCols + jw) * phases + ph * cols.stride + pw] = kh < 0 || kw < 0 ? -1 : kh * cols.kernel + kw;
        }
      }
    }
  }
  return table;
}

/**
 * For every input position i along an axis: the taps k (and outputs o) of the forward
 * convolution that read it, o = (i + padBefore - k*dilation) / stride. Entry i is
 * [count, k, o, k, o, ...] at offset i*(1 + 2*kernel).
 */
export function tapTable(a: AxisConv): Int32Array {
  const stride = 1 + 2 * a.kernel;
  const table = new Int32Array(a.inSize * stride);
  for (let i = 0; i < a.inSize; i++) {
    let n = 0;
    for (let k = 0; k < a.kernel; k++) {
      const t = i + a.padBefore - k * a.dilation;
      if (t < 0 || t % a.stride !== 0 || t / a.stride >= a.outSize) continue;
      table[i * stride + 1 + 2 * n] = k;
      table[i * stride + 2 + 2 * n] = t / a.stride;
      n++;
    }
    table[i * stride] = n;
  }
  return table;
}
