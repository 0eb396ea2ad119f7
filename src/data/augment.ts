import { Rng } from '../util/rng.js';
import type { ValueType } from '../util/options.js';
import type { DecodedImage } from './images.js';

/**
 * Seeded image augmentation with the semantics of Keras' preprocessing layers, on decoded 0..255
 * pixels (HWC), before preprocessing. Each factor is the layer's own:
 *   flip          RandomFlip("horizontal"): mirrored with probability 1/2
 *   rotate=D      RandomRotation(D/360): an angle uniform in [-D, D] degrees
 *   zoom=F        RandomZoom(F): scale uniform in [1-F, 1+F] (both axes; > 1 zooms out)
 *   translate=F   RandomTranslation(F, F): a shift uniform in [-F, F] of the height and of the width
 *   contrast=F    RandomContrast(F): (x - channel mean) * c + mean, c uniform in [1-F, 1+F]
 *   brightness=F  RandomBrightness(F): x + d * 255, d uniform in [-F, F]
 * Geometric changes are one inverse affine map sampled bilinearly, filling with the reflection of
 * the image (Keras' fill_mode 'reflect'), or with 0 given `fill=constant` (glyphs on a black
 * background); values are clipped to 0..255 as the layers clip to their value range.
 */
export interface AugmentSpec {
  flip: boolean;
  rotate: number;
  zoom: number;
  translate: number;
  contrast: number;
  brightness: number;
  fill: 'reflect' | 'constant';
}

const NO_AUGMENT: AugmentSpec = { flip: false, rotate: 0, zoom: 0, translate: 0, contrast: 0, brightness: 0, fill: 'reflect' };

/** Each parameter's valid range: [min, max], both inclusive. */
const RANGES: Record<Exclude<keyof AugmentSpec, 'flip' | 'fill'>, [number, number]> = {
  rotate: [0, 180],
  zoom: [0, 0.9],
  translate: [0, 0.5],
  contrast: [0, 1],
  brightness: [0, 1],
};

const VALID = `flip, rotate=DEGREES (0-180), zoom=F (0-0.9), translate=F (0-0.5), contrast=F (0-1), brightness=F (0-1), fill=reflect|constant, or none`;

/** `flip,rotate=15,zoom=0.1`; `none` (or nothing) is no augmentation. Undefined for anything else. */
export function parseAugment(text: string): AugmentSpec | undefined {
  const spec = { ...NO_AUGMENT };
  if (text.trim() === '' || text.trim() === 'none') return spec;
  for (const part of text.split(',').map((p) => p.trim())) {
    const [name, value] = part.split('=') as [string, string | undefined];
    if (name === 'flip' && value === undefined) {
      spec.flip = true;
      continue;
    }
    if (name === 'fill' && (value === 'reflect' || value === 'constant')) {
      spec.fill = value;
      continue;
    }
    const range = RANGES[name as keyof typeof RANGES];
    const n = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
    if (!range || !Number.isFinite(n) || n < range[0] || n > range[1]) return undefined;
    spec[name as keyof typeof RANGES] = n;
  }
  return spec;
}

/** The canonical text of a spec (`flip,rotate=15`): how runs record it and cache keys name it. */
export function augmentText(spec: AugmentSpec): string {
  const parts = spec.flip ? ['flip'] : [];
  for (const name of Object.keys(RANGES) as (keyof typeof RANGES)[]) if (spec[name] > 0) parts.push(`${name}=${spec[name]}`);
  if (!parts.length) return 'none';
  return [...parts, ...(spec.fill === 'constant' ? ['fill=constant'] : [])].join(',');
}

export function isAugmenting(spec: AugmentSpec): boolean {
  return augmentText(spec) !== 'none';
}

/** The option type of `--augment`: text on the command line, a spec string in the library. */
export const augmentType: ValueType<string> = {
  expected: `a comma-separated list of ${VALID}`,
  placeholder: '<list>',
  fromText: (t) => (parseAugment(t) ? t : undefined),
  accepts: (v) => typeof v === 'string' && parseAugment(v) !== undefined,
};

/** One draw of every random factor, in a fixed order so a seed always gives the same picture. */
interface Draw {
  fill: AugmentSpec['fill'];
  flip: boolean;
  angle: number;
  scale: number;
  dy: number;
  dx: number;
  contrast: number;
  brightness: number;
}

function uniform(rng: Rng, half: number): number {
  return (rng.next() * 2 - 1) * half;
}

function draw(spec: AugmentSpec, rng: Rng): Draw {
  return {
    fill: spec.fill,
    flip: spec.flip && rng.next() < 0.5,
    angle: (uniform(rng, spec.rotate) * Math.PI) / 180,
    scale: 1 + uniform(rng, spec.zoom),
    dy: uniform(rng, spec.translate),
    dx: uniform(rng, spec.translate),
    contrast: 1 + uniform(rng, spec.contrast),
    brightness: uniform(rng, spec.brightness) * 255,
  };
}

/** Reflect an out-of-range coordinate back into [0, n-1] (d c b | a b c d | c b a). */
function reflect(v: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((v % period) + period) % period;
  return m > n - 1 ? period - m : m;
}

/** Output pixel (x, y) reads input (sx, sy): rotation and zoom about the centre, then the shift. */
function warp(img: DecodedImage, d: Draw): Float32Array {
  const { data, height: h, width: w, channels: c } = img;
  const out = new Float32Array(data.length);
  const [cy, cx] = [(h - 1) / 2, (w - 1) / 2];
  const [cos, sin] = [Math.cos(d.angle) * d.scale, Math.sin(d.angle) * d.scale];
  const [shiftY, shiftX] = [d.dy * h, d.dx * w];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = (d.flip ? w - 1 - x : x) - cx - shiftX;
      const v = y - cy - shiftY;
      const [rx, ry] = [cos * u - sin * v + cx, sin * u + cos * v + cy];
      if (d.fill === 'constant' && (rx < 0 || rx > w - 1 || ry < 0 || ry > h - 1)) continue; // stays 0
      const [sx, sy] = [reflect(rx, w), reflect(ry, h)];
      const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
      const [x1, y1] = [Math.min(x0 + 1, w - 1), Math.min(y0 + 1, h - 1)];
      const [fx, fy] = [sx - x0, sy - y0];
      for (let k = 0; k < c; k++) {
        const at = (yy: number, xx: number) => data[(yy * w + xx) * c + k]!;
        const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
        const bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
        out[(y * w + x) * c + k] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return out;
}

/** RandomContrast then RandomBrightness, clipped to 0..255, into bytes. */
function adjustColour(values: Float32Array, channels: number, d: Draw): Uint8Array {
  const mean = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) mean[i % channels]! += values[i]!;
  for (let k = 0; k < channels; k++) mean[k]! /= values.length / channels;
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const m = mean[i % channels]!;
    out[i] = Math.min(255, Math.max(0, Math.round((values[i]! - m) * d.contrast + m + d.brightness)));
  }
  return out;
}

/** A new image: `img` randomly changed as `spec` says, the randomness drawn from `rng`. */
export function augmentImage(img: DecodedImage, spec: AugmentSpec, rng: Rng): DecodedImage {
  return transform(img, draw(spec, rng));
}

/** Whether every output pixel is an input pixel unchanged: no turn, zoom, shift or colour change (a flip at most). */
function movesPixelsOnly(d: Draw): boolean {
  return d.angle === 0 && d.scale === 1 && d.dy === 0 && d.dx === 0 && d.contrast === 1 && d.brightness === 0;
}

/**
 * The image's bytes, mirrored if `flip`: what warp + adjustColour give for such a draw, bit for bit,
 * at a hundredth of the cost (flip-only views are tl train's default augmentation and its TTA).
 */
function copyPixels(img: DecodedImage, flip: boolean): Uint8Array {
  if (!flip) return img.data.slice();
  const { data, width: w, channels: c } = img;
  const out = new Uint8Array(data.length);
  const row = w * c;
  for (let start = 0; start < data.length; start += row) {
    for (let x = 0; x < w; x++) {
      const [from, to] = [start + x * c, start + (w - 1 - x) * c];
      for (let k = 0; k < c; k++) out[to + k] = data[from + k]!;
    }
  }
  return out;
}

function transform(img: DecodedImage, d: Draw): DecodedImage {
  if (movesPixelsOnly(d)) return { ...img, data: copyPixels(img, d.flip) };
  return { ...img, data: adjustColour(warp(img, d), img.channels, d) };
}

/** A horizontally mirrored copy (test-time augmentation's second view). */
export function mirrorImage(img: DecodedImage): DecodedImage {
  return transform(img, { fill: 'reflect', flip: true, angle: 0, scale: 1, dy: 0, dx: 0, contrast: 1, brightness: 0 });
}
