import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import type { PredictionRecord, SampleSource } from '../artifacts/run.js';
import type { DecodedImage } from '../data/images.js';

/** Produces the picture of one sample, or fails (the cell then shows a placeholder). */
export type SampleLoader = (source: SampleSource) => Promise<DecodedImage | Buffer>;

export const THUMB = 84;
const PAD = 6;
const LINE = 14;
const TITLE = 30;
const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const MAX_WIDTH = 1200;
const GOOD = '#1a7f37';
const BAD = '#c62828';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A THUMB x THUMB PNG of one sample. Small glyphs (28x28) are enlarged with nearest-neighbour
 * so the pixels stay sharp; photos are cropped to a centred square.
 */
export async function thumbnail(picture: DecodedImage | Buffer): Promise<Buffer> {
  const image = Buffer.isBuffer(picture)
    ? sharp(picture).rotate()
    : sharp(Buffer.from(picture.data.buffer, picture.data.byteOffset, picture.data.byteLength), {
        raw: { width: picture.width, height: picture.height, channels: picture.channels },
      });
  const small = !Buffer.isBuffer(picture) && picture.width <= THUMB / 2;
  return image
    .resize(THUMB, THUMB, { fit: 'cover', kernel: small ? 'nearest' : 'lanczos3' })
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
}

export async function placeholder(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${THUMB}" height="${THUMB}"><rect width="100%" height="100%" fill="#eee"/><text x="50%" y="55%" text-anchor="middle" font-family="${FONT}" font-size="11" fill="#777">not found</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Loads each sample's picture once; a missing photo becomes a grey "not found" tile, not a failed report. */
export async function loadThumbnails(
  records: PredictionRecord[],
  load: SampleLoader,
): Promise<{ thumbs: Buffer[]; missing: number }> {
  let missing = 0;
  const thumbs: Buffer[] = [];
  for (const r of records) {
    try {
      thumbs.push(await thumbnail(await load(r.source)));
    } catch {
      missing++;
      thumbs.push(await placeholder());
    }
  }
  return { thumbs, missing };
}

function fit(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, Math.max(1, chars - 1))}…`;
}

/** Shortened in the middle, so a file name keeps its end (number, extension) as well as its start. */
function fitMiddle(text: string, chars: number): string {
  if (text.length <= chars) return text;
  const tail = Math.floor((chars - 1) / 2);
  return `${text.slice(0, chars - 1 - tail)}…${text.slice(text.length - tail)}`;
}

export interface GridOptions {
  title: string;
  labels: string[];
  /** A third line under each photo with its file name (where a mistake can be looked up). */
  showFileNames?: boolean;
}

/** The file name of a photo sample; dataset samples are named by split and index. */
function sampleName(source: PredictionRecord['source']): string {
  return source.kind === 'file' ? path.basename(source.path) : `${source.split} #${source.index}`;
}

/** Average advance of an 11 px DejaVu Sans character, for fitting labels into cells. */
const CHAR = 6.6;
/** Characters of "pred: " and " 100%" around the predicted label. */
const PRED_EXTRA = 11;

/** Cell width from the longest class name, so "pred: <name> 97%" fits on one line. */
function cellWidth(labels: string[]): number {
  const longest = Math.min(16, Math.max(...labels.map((l) => l.length), 1));
  return Math.max(THUMB + 2 * PAD, Math.ceil(CHAR * (longest + PRED_EXTRA) + 8));
}

/**
 * One PNG: a title row, then one cell per sample with its picture, the true label and the
 * predicted label with confidence (green when right, red when wrong). Text is SVG rendered by
 * sharp (librsvg), composited over the thumbnails.
 */
export async function composeGrid(records: PredictionRecord[], thumbs: Buffer[], opts: GridOptions): Promise<Buffer> {
  const cw = cellWidth(opts.labels);
  const ch = PAD + THUMB + 4 + (opts.showFileNames ? 3 : 2) * LINE + PAD;
  const columns = Math.max(1, Math.min(records.length, Math.floor(MAX_WIDTH / cw)));
  const rows = Math.ceil(records.length / columns);
  // Wide enough for the title (bold 14 px: about 8 px a character), even over one or two cells.
  const width = Math.max(columns * cw, 360, Math.ceil(opts.title.length * 8 + 2 * PAD));
  const height = TITLE + Math.max(rows, 1) * ch;
  const chars = Math.floor((cw - 8) / CHAR);
  const text: string[] = [
    `<text x="${PAD}" y="20" font-size="14" font-weight="bold" fill="#222">${escapeXml(opts.title)}</text>`,
  ];
  const composites: OverlayOptions[] = [];
  records.forEach((r, i) => {
    const left = (i % columns) * cw;
    const top = TITLE + Math.floor(i / columns) * ch;
    const colour = r.predicted === r.label ? GOOD : BAD;
    const truth = opts.labels[r.label] ?? `#${r.label}`;
    const guess = opts.labels[r.predicted] ?? `#${r.predicted}`;
    const confidence = `${Math.round(r.confidence * 100)}%`;
    const cx = left + cw / 2;
    const textTop = top + PAD + THUMB + 4;
    composites.push({ input: thumbs[i]!, left: Math.round(left + (cw - THUMB) / 2), top: top + PAD });
    text.push(
      `<rect x="${Math.round(left + (cw - THUMB) / 2) - 1.5}" y="${top + PAD - 1.5}" width="${THUMB + 3}" height="${THUMB + 3}" fill="none" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${cx}" y="${textTop + 11}" text-anchor="middle" font-size="11" fill="#222">true: ${escapeXml(fit(truth, chars - 6))}</text>`,
      `<text x="${cx}" y="${textTop + 11 + LINE}" text-anchor="middle" font-size="11" fill="${colour}">pred: ${escapeXml(fit(guess, chars - PRED_EXTRA))} ${confidence}</text>`,
    );
    if (opts.showFileNames) {
      text.push(`<text x="${cx}" y="${textTop + 11 + 2 * LINE}" text-anchor="middle" font-size="10" fill="#666">${escapeXml(fitMiddle(sampleName(r.source), chars + 1))}</text>`);
    }
  });
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT}">${text.join('')}</svg>`;
  composites.push({ input: Buffer.from(overlay), left: 0, top: 0 });
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png({ compressionLevel: 9 })
    .toBuffer();
}
