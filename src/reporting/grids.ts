import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import type { PredictionRecord, SampleSource } from '../artifacts/run.js';
import type { DecodedImage } from '../data/images.js';
import { DECODE_CONCURRENCY, mapLimit } from '../data/image-folder.js';

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

/**
 * Loads each sample's picture once; a missing photo becomes a grey "not found" tile, not a failed
 * report. A few at a time: each tile is a sharp pipeline on the thread pool, and one after another
 * left the process waiting on them.
 */
export async function loadThumbnails(
  records: PredictionRecord[],
  load: SampleLoader,
): Promise<{ thumbs: Buffer[]; missing: number }> {
  let missing = 0;
  const thumbs = await mapLimit(records, DECODE_CONCURRENCY, async (r) => {
    try {
      return await thumbnail(await load(r.source));
    } catch {
      missing++;
      return placeholder();
    }
  });
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

/** A cell wide enough for a caption of `chars` characters, and never narrower than its picture. */
function widthFor(chars: number): number {
  return Math.max(THUMB + 2 * PAD, Math.ceil(CHAR * chars + 8));
}

/** Cell width from the longest class name, so "pred: <name> 97%" fits on one line. */
function cellWidth(labels: string[]): number {
  return widthFor(Math.min(16, Math.max(...labels.map((l) => l.length), 1)) + PRED_EXTRA);
}

/** Where the cells of a grid go: `columns` cells a row under a title row. */
export interface CellLayout {
  cellWidth: number;
  cellHeight: number;
  columns: number;
}

function cellLayout(count: number, cellWidth: number, lines: number, columns?: number): CellLayout {
  return {
    cellWidth,
    cellHeight: PAD + THUMB + 4 + lines * LINE + PAD,
    columns: columns ?? Math.max(1, Math.min(count, Math.floor(MAX_WIDTH / cellWidth))),
  };
}

/** The THUMB x THUMB square of the i-th cell's picture in a grid of this layout. */
export function thumbBox(layout: CellLayout, i: number): { left: number; top: number; width: number; height: number } {
  const left = (i % layout.columns) * layout.cellWidth + Math.round((layout.cellWidth - THUMB) / 2);
  const top = TITLE + Math.floor(i / layout.columns) * layout.cellHeight + PAD;
  return { left, top, width: THUMB, height: THUMB };
}

/** One line of text under a cell's picture. */
interface CaptionLine {
  text: string;
  fill: string;
  size?: number;
}

/** One cell: its picture, the colour of the frame around it (none without), the lines under it. */
interface Cell {
  thumb: Buffer;
  frame?: string;
  lines: CaptionLine[];
}

/**
 * One PNG: a title row, then the cells in rows of `layout.columns`. Text is SVG rendered by sharp
 * (librsvg), composited over the thumbnails.
 */
async function composeCells(title: string, cells: Cell[], layout: CellLayout): Promise<Buffer> {
  const { cellWidth: cw, cellHeight: ch, columns } = layout;
  const rows = Math.ceil(cells.length / columns);
  // Wide enough for the title (bold 14 px: 7.7-8.4 px a character measured, more with digits and '='), even over one or two cells.
  const width = Math.max(columns * cw, 360, Math.ceil(title.length * 9 + 2 * PAD));
  const height = TITLE + Math.max(rows, 1) * ch;
  const text: string[] = [`<text x="${PAD}" y="20" font-size="14" font-weight="bold" fill="#222">${escapeXml(title)}</text>`];
  const composites: OverlayOptions[] = [];
  cells.forEach((cell, i) => {
    const box = thumbBox(layout, i);
    const cx = (i % columns) * cw + cw / 2;
    const textTop = box.top + THUMB + 4;
    composites.push({ input: cell.thumb, left: box.left, top: box.top });
    if (cell.frame) text.push(`<rect x="${box.left - 1.5}" y="${box.top - 1.5}" width="${THUMB + 3}" height="${THUMB + 3}" fill="none" stroke="${cell.frame}" stroke-width="2"/>`);
    cell.lines.forEach((line, k) => {
      text.push(`<text x="${cx}" y="${textTop + 11 + k * LINE}" text-anchor="middle" font-size="${line.size ?? 11}" fill="${line.fill}">${escapeXml(line.text)}</text>`);
    });
  });
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT}">${text.join('')}</svg>`;
  composites.push({ input: Buffer.from(overlay), left: 0, top: 0 });
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toBuffer();
}

/** Characters of caption that fit under a cell of this width. */
function captionChars(cw: number): number {
  return Math.floor((cw - 8) / CHAR);
}

/**
 * A grid of predictions: one cell per sample with its picture, the true label and the predicted
 * label with confidence (green when right, red when wrong).
 */
export async function composeGrid(records: PredictionRecord[], thumbs: Buffer[], opts: GridOptions): Promise<Buffer> {
  const layout = cellLayout(records.length, cellWidth(opts.labels), opts.showFileNames ? 3 : 2);
  const chars = captionChars(layout.cellWidth);
  const cells = records.map((r, i): Cell => {
    const colour = r.predicted === r.label ? GOOD : BAD;
    const truth = opts.labels[r.label] ?? `#${r.label}`;
    const guess = opts.labels[r.predicted] ?? `#${r.predicted}`;
    const lines: CaptionLine[] = [
      { text: `true: ${fit(truth, chars - 6)}`, fill: '#222' },
      { text: `pred: ${fit(guess, chars - PRED_EXTRA)} ${Math.round(r.confidence * 100)}%`, fill: colour },
    ];
    if (opts.showFileNames) lines.push({ text: fitMiddle(sampleName(r.source), chars + 1), fill: '#666', size: 10 });
    return { thumb: thumbs[i]!, frame: colour, lines };
  });
  return composeCells(opts.title, cells, layout);
}

/** The layout of a captioned grid: cells as wide as the longest caption (up to 24 characters). */
export function captionedLayout(captions: string[], columns?: number): CellLayout {
  return cellLayout(captions.length, widthFor(Math.min(24, Math.max(...captions.map((c) => c.length), 1))), 1, columns);
}

/** A grid of pictures with one line of free text under each (`columns` a row; default as many as fit). */
export async function composeCaptionedGrid(title: string, thumbs: Buffer[], captions: string[], columns?: number): Promise<Buffer> {
  const layout = captionedLayout(captions, columns);
  const chars = captionChars(layout.cellWidth);
  return composeCells(title, thumbs.map((thumb, i) => ({ thumb, lines: [{ text: fit(captions[i] ?? '', chars), fill: '#222' }] })), layout);
}
