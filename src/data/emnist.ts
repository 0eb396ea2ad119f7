import { fileError } from '../util/errors.js';

/**
 * EMNIST specifics: the `emnist-<split>-mapping.txt` files and the transposed pixel layout.
 */
export interface LabelMapping {
  /** Raw label values as stored in the idx labels file, in class-index order. */
  rawLabels: number[];
  /** Character(s) of each class: '0', 'A', 'a', or 'A/a' for EMNIST Letters' merged classes. */
  classNames: string[];
}

/**
 * Parse a mapping file: one `label code [code...]` line per class, codes being ASCII.
 * ByMerge/Balanced give 0-9, A-Z and a b d e f g h n q r t; Letters gives `1 65 97` (A and a).
 */
export function parseMapping(text: string, file: string): LabelMapping {
  const rawLabels: number[] = [];
  const classNames: string[] = [];
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  lines.forEach((line, i) => {
    const nums = line.trim().split(/\s+/).map(Number);
    if (nums.length < 2 || nums.some((n) => !Number.isInteger(n) || n < 0)) {
      throw fileError(file, `line ${i + 1} is not "label ascii-code": ${JSON.stringify(line)}`, 'use the original emnist-*-mapping.txt');
    }
    rawLabels.push(nums[0]!);
    classNames.push(nums.slice(1).map((c) => String.fromCharCode(c)).join('/'));
  });
  if (rawLabels.length === 0) throw fileError(file, 'mapping file is empty', 'use the original emnist-*-mapping.txt');
  return { rawLabels, classNames };
}

/** Map raw labels to class indices 0..K-1; a label not in the mapping is an error naming the file. */
export function toClassIndices(raw: Uint8Array, mapping: LabelMapping, file: string): Uint8Array {
  const lookup = new Int16Array(256).fill(-1);
  mapping.rawLabels.forEach((label, index) => (lookup[label] = index));
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const index = lookup[raw[i]!]!;
    if (index < 0) throw fileError(file, `row ${i} has label ${raw[i]}, which the mapping file does not list`, 'use the labels and mapping files of the same EMNIST split');
    out[i] = index;
  }
  return out;
}

/**
 * Transpose every `height x width` image (row-major) into a new array: EMNIST's idx files
 * store each character transposed relative to MNIST, so this returns them upright.
 */
export function transposeImages(data: Uint8Array, count: number, height: number, width: number): Uint8Array {
  const out = new Uint8Array(data.length);
  const size = height * width;
  for (let n = 0; n < count; n++) {
    const base = n * size;
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) out[base + c * height + r] = data[base + r * width + c]!;
    }
  }
  return out;
}
