import sharp from 'sharp';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileAccessReason, nonRegularFileReason } from '../util/file-kinds.js';

/** File extensions tl reads as images (what sharp decodes in its prebuilt binaries). */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif'] as const;

/**
 * A decoded image larger than this many input pixels is refused before decoding, so a
 * 20000x20000 file fails with a reason instead of allocating gigabytes.
 */
export const DEFAULT_MAX_INPUT_PIXELS = 50_000_000;

/**
 * Names the decoding pipeline below. Anything cached from decoded pixels (the feature cache) keys
 * on it: change it whenever the pipeline's output changes (resize kernel, colour handling...).
 */
export const DECODER_ID = 'sharp:rotate,flatten-white,fill-linear,srgb-8bit:v1';

export function isImageFile(file: string): boolean {
  const ext = path.extname(file).slice(1).toLowerCase();
  return (IMAGE_EXTENSIONS as readonly string[]).includes(ext);
}

/** 8-bit pixels in height x width x channels order, as every tl model consumes them. */
export interface DecodedImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface DecodeOptions {
  /** Output [height, width]; the image is stretched to it, with an antialiased bilinear filter (Keras' image_dataset_from_directory resizes bilinearly too). */
  size: [number, number];
  /** 3 = sRGB, 1 = luminance. */
  channels: 1 | 3;
  maxInputPixels?: number;
}

/**
 * Decode one image file (or its bytes) into 8-bit sRGB (or gray) pixels of a fixed size.
 * EXIF orientation is applied; alpha is flattened onto white (transparent regions look like
 * paper, not like black ink); CMYK, 16-bit, palette and grayscale inputs all come out as
 * plain 8-bit channels.
 */
export async function decodeImage(input: string | Buffer, opts: DecodeOptions): Promise<DecodedImage> {
  const [height, width] = opts.size;
  let pipeline = sharp(input, {
    limitInputPixels: opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS,
    failOn: 'error',
    pages: 1,
  })
    .rotate()
    .flatten({ background: '#ffffff' })
    .resize(width, height, { fit: 'fill', kernel: 'linear' });
  pipeline = opts.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  const { data, info } = await pipeline.toFormat('raw', { depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== opts.channels || info.width !== width || info.height !== height || data.length !== width * height * opts.channels) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x${opts.channels}`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height, width, channels: opts.channels };
}

/** Why sharp could not read a file, in a few words fit for a "skipped" list. */
export function decodeFailureReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(message)) return 'image is larger than the input pixel limit';
  if (/unsupported image format/i.test(message)) return 'not an image (unsupported format)';
  if (/premature end|truncated|VipsJpeg: .*end of/i.test(message)) return 'truncated or corrupt image data';
  return message.split('\n')[0]!.replace(/^Error: /, '').slice(0, 200);
}

export type DecodeResult = { ok: true; image: DecodedImage } | { ok: false; reason: string };

/** Why `file` cannot be read at all (missing, not a regular file, empty, no permission), or undefined when it can. */
export async function unreadableFileReason(file: string): Promise<string | undefined> {
  try {
    const stat = await fs.stat(file);
    const notRegular = nonRegularFileReason(stat);
    if (notRegular) return notRegular;
    if (stat.size === 0) return 'empty file (0 bytes)';
    await fs.access(file, fsConstants.R_OK);
    return undefined;
  } catch (err) {
    return fileAccessReason(err);
  }
}

/**
 * Lets decodes run side by side, except one that must run alone. libvips keeps one error buffer
 * for the whole process and sharp reads it after a failure: when decodes fail at the same time,
 * one clears or overwrites the other's message and sharp reports "Unknown error" (or another
 * file's reason). A failed decode is therefore repeated alone to get its own message.
 */
class DecodeScheduler {
  private readonly running = new Set<Promise<unknown>>();
  /** Settles when the decode that runs alone (if any) is done; replaced by each new one. */
  private alone: Promise<void> = Promise.resolve();

  async together<T>(decode: () => Promise<T>): Promise<T> {
    for (let gate = this.alone; ; gate = this.alone) {
      await gate;
      if (gate === this.alone) break;
    }
    const pending = decode();
    this.running.add(pending);
    try {
      return await pending;
    } finally {
      this.running.delete(pending);
    }
  }

  async byItself<T>(decode: () => Promise<T>): Promise<T> {
    const previous = this.alone;
    let release!: () => void;
    this.alone = new Promise((resolve) => (release = resolve));
    try {
      await previous;
      await Promise.allSettled([...this.running]);
      return await decode();
    } finally {
      release();
    }
  }
}

const scheduler = new DecodeScheduler();

/**
 * Like decodeImage, but a bad file becomes a reason instead of an exception. Files that cannot
 * be read at all are refused before sharp opens them; a failed decode is retried alone, so its
 * reason is its own.
 */
export async function tryDecodeImage(input: string | Buffer, opts: DecodeOptions): Promise<DecodeResult> {
  if (typeof input === 'string') {
    const unreadable = await unreadableFileReason(input);
    if (unreadable) return { ok: false, reason: unreadable };
  }
  const decode = () => decodeImage(input, opts);
  try {
    return { ok: true, image: await scheduler.together(decode) };
  } catch {
    try {
      return { ok: true, image: await scheduler.byItself(decode) };
    } catch (err) {
      return { ok: false, reason: decodeFailureReason(err) };
    }
  }
}
