import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { EpochRecord, Evaluation, PredictionRecord, RunConfig, RunMetrics } from '../artifacts/run.js';
import { RunDir } from '../artifacts/run.js';
import { exists, writeFileAtomic } from '../util/atomic.js';
import { confusionSpec, curvesSpec } from './charts.js';
import { mostConfusedPairs, pickMisclassified, pickSamples } from './analysis.js';
import { runFacts, formatDuration, speedIsHeadOnly } from './facts.js';
import { composeGrid, loadThumbnails, placeholder, type GridOptions, type SampleLoader } from './grids.js';
import { augmentedFigure, trainingAugmentation, AUGMENTED_VIEWS } from './augmented.js';
import { formatLr, lrFindSpec, readLrFindResult, LR_FIND_FILE } from './lr-find-chart.js';
import { gradCamLayer, gradCamThumbnails, splitAtFeatureLayer, type GradCamModel } from './gradcam.js';
import { loadLayersModelFromDir } from '../models/layers-io.js';
import { multiOutputEngine } from '../models/engine.js';
import { initBackend } from '../runtime/backend.js';
import { figure, page, scoreCell, section, table, numHeader, escapeHtml, type Cell, type FigureImage } from './html.js';
import { renderVegaLite, type TopLevelSpec } from './vega.js';
import { defaultSampleLoader, rememberingLoader } from './samples.js';
import { emitMessage } from '../runtime/context.js';
import { errorLine } from '../util/errors.js';

export interface ReportOptions {
  /** How a prediction's picture is found (called for a few samples at a time); default: the photo file, or the dataset sample in the tl cache. */
  loadSample?: SampleLoader;
  /** Misclassified samples shown at most. */
  maxMisclassified?: number;
  /** Where report.html and the PNGs go; default: the run directory. */
  out?: string;
  /** Report on this scoring of another folder (`tl evaluate --report`) instead of the run's own test set. */
  scored?: ScoredFolder;
}

/** A run's predictions on a folder it was not tested on, as `tl evaluate` scores it. */
export interface ScoredFolder {
  folder: string;
  evaluation: Evaluation;
  predictions: PredictionRecord[];
  skipped: { file: string; reason: string }[];
}

export interface ReportResult {
  /** Path of report.html */
  html: string;
  /** Paths of the figure PNGs beside it */
  pngs: string[];
}

/**
 * The figures a complete run's report holds, in page order. Some runs' reports hold more: Grad-CAM
 * grids (runs on a backbone), `augmented` (augmenting runs), `lr-find` (after `tl lr-find RUN`).
 */
export const REPORT_FIGURES = ['curves', 'confusion', 'samples', 'misclassified'] as const;

interface RunFiles {
  config: RunConfig;
  labels: string[];
  history?: EpochRecord[];
  metrics?: RunMetrics;
  predictions?: PredictionRecord[];
  /** What `tl lr-find RUN` kept (see lr-find-chart.ts). */
  lrFind?: Awaited<ReturnType<typeof readLrFindResult>>;
}

async function optional<T>(run: RunDir, name: 'history' | 'metrics' | 'predictions', read: () => Promise<T>): Promise<T | undefined> {
  return (await exists(run.file(name))) ? read() : undefined;
}

async function readRunFiles(runDir: string): Promise<RunFiles> {
  const run = await RunDir.open(runDir);
  return {
    config: await run.config(),
    labels: await run.labels(),
    history: await optional(run, 'history', () => run.history()),
    metrics: await optional(run, 'metrics', () => run.metrics()),
    predictions: await optional(run, 'predictions', () => run.predictions()),
    lrFind: await readLrFindResult(run.dir),
  };
}

/** The run's files with its test evaluation replaced by the scoring of another folder. */
function withScoredFolder(files: RunFiles, scored: ScoredFolder): RunFiles {
  const testCount = scored.predictions.length;
  const dataset = { ...(files.metrics?.dataset ?? { trainCount: 0, valCount: 0 }), name: path.basename(scored.folder), split: `scored by tl evaluate: ${scored.folder}`, testCount, classes: files.labels.length, skipped: scored.skipped };
  const metrics: RunMetrics = { trainSeconds: 0, backend: 'unknown', ...files.metrics, test: scored.evaluation, evaluatedOn: 'test', dataset };
  return { ...files, metrics, predictions: scored.predictions };
}

async function chartFigure(name: string, caption: string, spec: TopLevelSpec): Promise<{ fig: FigureImage; png: Buffer }> {
  const chart = await renderVegaLite(spec);
  return { fig: { name, caption, mime: 'image/svg+xml', data: chart.svg, width: chart.width, height: chart.height }, png: chart.png };
}

async function pngFigure(name: string, caption: string, png: Buffer): Promise<{ fig: FigureImage; png: Buffer }> {
  const { width = 0, height = 0 } = await sharp(png).metadata();
  return { fig: { name, caption, mime: 'image/png', data: png, width, height }, png };
}

async function gridFigure(
  name: string,
  caption: string,
  records: PredictionRecord[],
  thumbnails: { thumbs: Buffer[]; missing: number },
  grid: Omit<GridOptions, 'title'>,
): Promise<{ fig: FigureImage; png: Buffer; missing: number }> {
  const png = await composeGrid(records, thumbnails.thumbs, { title: caption, ...grid });
  return { ...(await pngFigure(name, caption, png)), missing: thumbnails.missing };
}

function percent(x: number, digits = 1): string {
  return `${(x * 100).toFixed(digits)}%`;
}

function perClassTable(test: Evaluation): string {
  const rows: Cell[][] = test.perClass.map((c) => [c.label, scoreCell(c.precision), scoreCell(c.recall), scoreCell(c.f1), c.support]);
  const total = test.perClass.reduce((a, c) => a + c.support, 0);
  const mean = (key: 'precision' | 'recall' | 'f1', weighted: boolean): Cell => {
    const value = test.perClass.reduce((a, c) => a + c[key] * (weighted ? c.support / total : 1 / test.perClass.length), 0);
    return { html: value.toFixed(3), className: 'num' };
  };
  for (const weighted of [false, true]) {
    const name = weighted ? 'weighted average' : 'macro average';
    rows.push([name, mean('precision', weighted), mean('recall', weighted), mean('f1', weighted), total]);
  }
  const headers = ['class', numHeader('precision'), numHeader('recall'), numHeader('F1'), numHeader('support')];
  const averages = test.perClass.length;
  return table(headers, rows, { className: 'per-class', rowClass: (i) => (i >= averages ? 'avg' : undefined) });
}

function confusedPairsTable(test: Evaluation, labels: string[]): string {
  const pairs = mostConfusedPairs(test.confusion, labels, 12);
  if (pairs.length === 0) return '<p class="note">No confusions: every test sample was classified correctly.</p>';
  const rows: Cell[][] = pairs.map((p) => [`${p.a} / ${p.b}`, p.aAsB, p.bAsA, p.total, percent(p.share)]);
  const head = ['pair a / b', numHeader('a taken for b'), numHeader('b taken for a'), numHeader('total'), numHeader('of both classes')];
  return `<h3>Most-confused pairs</h3>${table(head, rows, { className: 'pairs' })}`;
}

function summaryCards(files: RunFiles): [string, string][] {
  const m = files.metrics;
  if (!m) return [['classes', String(files.labels.length)]];
  const cards: [string, string][] = [
    ['test accuracy', percent(m.test.accuracy, 2)],
    ['test loss', m.test.loss.toFixed(4)],
    ['classes', String(files.labels.length)],
    ['test samples', String(m.dataset.testCount)],
    ['training time', formatDuration(m.trainSeconds)],
  ];
  if (m.imagesPerSecond !== undefined) cards.push([speedIsHeadOnly(files.config.kind) ? 'head images / s' : 'images / s', m.imagesPerSecond.toFixed(0)]);
  cards.push(['backend', m.backend]);
  return cards;
}

function missingNote(what: string, file: string): string {
  return `<p class="note">No ${escapeHtml(what)}: <code>${escapeHtml(file)}</code> is missing (interrupted run?).</p>`;
}

/** What each part of the page contributes: its HTML, its figures (written as PNGs), its notes. */
interface Part {
  sections: string[];
  figures: { fig: FigureImage; png: Buffer }[];
  notes: string[];
}

async function curvesPart({ history }: RunFiles): Promise<Part> {
  if (!history?.length) return { sections: [section('curves', 'Training curves', missingNote('training history', 'history.json'))], figures: [], notes: [] };
  const f = await chartFigure('curves', 'Accuracy and loss per epoch, training and validation', curvesSpec(history));
  return { sections: [section('curves', 'Training curves', figure(f.fig))], figures: [f], notes: [] };
}

async function evaluationPart({ metrics, labels }: RunFiles): Promise<Part> {
  if (!metrics) return { sections: [section('confusion', 'Test evaluation', missingNote('test evaluation', 'metrics.json'))], figures: [], notes: [] };
  const f = await chartFigure('confusion', 'Confusion matrix on the test set', confusionSpec(labels, metrics.test.confusion));
  const matrix = `<div class="columns"><div>${figure(f.fig)}</div><div>${confusedPairsTable(metrics.test, labels)}</div></div>`;
  return {
    sections: [section('confusion', 'Confusion matrix', matrix), section('per-class', 'Per-class precision, recall and F1 (test set)', perClassTable(metrics.test))],
    figures: [f],
    notes: [],
  };
}

/** The misclassified files as text, in the grid's order: where each one can be found and looked at. */
function misclassifiedFiles(records: PredictionRecord[], labels: string[]): string {
  const where = (r: PredictionRecord) => (r.source.kind === 'file' ? r.source.path : `${r.source.dataset} ${r.source.split} #${r.source.index}`);
  const items = records.map((r) => `<li><code>${escapeHtml(where(r))}</code>: ${escapeHtml(labels[r.label] ?? `#${r.label}`)} taken for ${escapeHtml(labels[r.predicted] ?? `#${r.predicted}`)} (${percent(r.confidence)})</li>`);
  return `<h3>Misclassified files</h3><ol class="files">${items.join('')}</ol>`;
}

/** Grad-CAM tiles in place of photos; a picture that cannot be decoded becomes the "not found" tile. */
async function gradCamTiles(gradCam: GradCamSource, records: PredictionRecord[], load: SampleLoader): Promise<{ thumbs: Buffer[]; missing: number }> {
  const tiles = await gradCamThumbnails(gradCam.model, gradCam.config, records, load);
  const thumbs = await Promise.all(tiles.map((t) => t ?? placeholder()));
  return { thumbs, missing: tiles.filter((t) => !t).length };
}

async function predictionsPart({ predictions, labels }: RunFiles, options: ReportOptions, load: SampleLoader, gradCam: GradCamSource | undefined): Promise<Part> {
  if (!predictions?.length) return { sections: [section('samples', 'Sample predictions', missingNote('predictions', 'predictions.json'))], figures: [], notes: [] };
  const wrong = predictions.filter((p) => p.predicted !== p.label).length;
  const shown = pickMisclassified(predictions, options.maxMisclassified ?? 100);
  const samples = pickSamples(predictions, labels.length);
  const part: Part = { sections: [], figures: [], notes: [] };
  const add = async (name: string, title: string, caption: string, records: PredictionRecord[], showFileNames: boolean, after = '') => {
    const photos = await loadThumbnails(records, load);
    const g = await gridFigure(name, caption, records, photos, { labels, showFileNames });
    part.figures.push(g);
    let html = figure(g.fig);
    if (g.missing > 0) part.notes.push(`${g.missing} sample pictures of figure "${name}" could not be loaded (moved photos or dataset not in the cache)`);
    if (gradCam) {
      const heat = await gridFigure(`${name}-gradcam`, `Grad-CAM of the same samples at ${gradCam.config.backbone?.featureLayer}: the regions that raised the predicted class's score (red most)`, records, await gradCamTiles(gradCam, records, load), { labels, showFileNames });
      part.figures.push(heat);
      html += figure(heat.fig);
    }
    part.sections.push(section(name, title, html + after));
  };
  await add('samples', 'Sample predictions', `Test predictions, round-robin over the ${labels.length} classes`, samples, false);
  if (shown.length) await add('misclassified', 'Misclassified samples', `Misclassified test samples: ${shown.length} of ${wrong}, most confident first`, shown, true, misclassifiedFiles(shown, labels));
  else part.sections.push(section('misclassified', 'Misclassified samples', '<p class="note">None: every test sample was classified correctly.</p>'));
  return part;
}

/** No part: the run has nothing of this kind. */
const NO_PART: Part = { sections: [], figures: [], notes: [] };

/** The run's augmentation applied to sample pictures as training applied it; nothing for a run that did not augment. */
async function augmentationPart({ config, predictions, labels }: RunFiles, load: SampleLoader): Promise<Part> {
  const spec = trainingAugmentation(config);
  if (!spec) return NO_PART;
  const title = 'Augmentation';
  if (!predictions?.length) return { sections: [section('augmentation', title, missingNote('sample pictures', 'predictions.json'))], figures: [], notes: [] };
  const shown = await augmentedFigure(config, spec, predictions, labels.length, load);
  if (!shown) return { sections: [section('augmentation', title, '<p class="note">No sample picture could be loaded to show the augmentation on.</p>')], figures: [], notes: [] };
  const caption = `The run's augmentation, ${shown.spec}, applied to ${shown.pictures} sample pictures as training saw its images: each picture as the model took it, then ${AUGMENTED_VIEWS} random views (seed ${config.seed})`;
  const f = await pngFigure('augmented', caption, shown.png);
  return { sections: [section('augmentation', title, figure(f.fig))], figures: [f], notes: [] };
}

/** The learning-rate range test of `tl lr-find RUN`, when the run holds its result. */
async function lrFindPart({ config, lrFind }: RunFiles): Promise<Part> {
  if (!lrFind) return NO_PART;
  if ('problem' in lrFind) return { ...NO_PART, notes: [lrFind.problem] };
  const { result } = lrFind;
  const f = await chartFigure('lr-find', `Training loss of the head against the learning rate (tl lr-find, ${result.points.length} steps)`, lrFindSpec(result));
  const trainedAt = typeof config.hyperparameters.lr === 'number' ? `; the run was trained at ${formatLr(config.hyperparameters.lr)}` : '';
  const text = `<p>Suggested learning rate <strong>${formatLr(result.suggestedLr)}</strong>, where the smoothed loss falls fastest (lowest loss at ${formatLr(result.minLossLr)})${escapeHtml(trainedAt)}. From <code>${LR_FIND_FILE}</code>.</p>`;
  return { sections: [section('lr-find', 'Learning-rate finder', figure(f.fig) + text)], figures: [f], notes: [] };
}

/** What Grad-CAM needs: the run's model split at its feature layer, and how it takes its pictures. */
interface GradCamSource {
  model: GradCamModel;
  config: RunConfig;
}

/** The run's model split at its feature layer, for runs that have one (transfer and fine-tuned runs on photos). */
async function openGradCam(runDir: string, config: RunConfig): Promise<{ source: GradCamSource; dispose(): Promise<void> } | undefined> {
  const featureLayer = gradCamLayer(config);
  if (!featureLayer) return undefined;
  await initBackend();
  const model = await loadLayersModelFromDir(runDir);
  const split = splitAtFeatureLayer(model, featureLayer);
  if (!split) {
    model.dispose();
    return undefined;
  }
  const base = await multiOutputEngine(split.base);
  return {
    source: { model: { split, base }, config },
    dispose: async () => {
      await base.dispose();
      model.dispose();
    },
  };
}

/**
 * Write report.html (self-contained: figures as data URIs, inline CSS, no scripts) and one PNG
 * per figure into the run directory. Every file is written atomically, the page last. Parts whose
 * run file is missing (an interrupted run) are named on the page instead.
 */
export async function writeReport(runDir: string, options: ReportOptions = {}): Promise<ReportResult> {
  const dir = path.resolve(runDir);
  const out = path.resolve(options.out ?? dir);
  const runFiles = await readRunFiles(dir);
  const load = rememberingLoader(options.loadSample ?? defaultSampleLoader);
  const files = options.scored ? withScoredFolder(runFiles, options.scored) : runFiles;
  const facts = section('facts', 'Run facts', table([], runFacts(files.config, files.metrics), { className: 'facts', rowHeaders: true }));
  // The charts and grids are drawn and encoded by sharp's threads while Grad-CAM computes here.
  const drawn = Promise.all([curvesPart(files), lrFindPart(files), evaluationPart(files), augmentationPart(files, load)]);
  drawn.catch(() => undefined); // awaited below; a failure here must not surface as unhandled first
  const gradCam = files.predictions?.length ? await openGradCam(dir, files.config) : undefined;
  let predictions: Part;
  try {
    predictions = await predictionsPart(files, options, load, gradCam?.source);
  } finally {
    await gradCam?.dispose();
  }
  const [curves, lrFind, evaluation, augmentation] = await drawn;
  const parts = [curves, lrFind, evaluation, predictions, augmentation];
  const notes = parts.flatMap((p) => p.notes);
  const sections = [facts, ...parts.flatMap((p) => p.sections)];
  if (notes.length) sections.push(section('notes', 'Notes', `<ul>${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`));

  const pngs: string[] = [];
  for (const { fig, png } of parts.flatMap((p) => p.figures)) {
    const file = path.join(out, `${fig.name}.png`);
    await writeFileAtomic(file, png);
    pngs.push(file);
  }
  const { config } = files;
  const subject = options.scored ? `${config.model}, scored on ${options.scored.folder}` : `${config.model} on ${config.dataset.name}`;
  const html = page(subject, `${config.kind} run · ${config.createdAt} · ${dir}`, summaryCards(files), sections);
  await fs.mkdir(out, { recursive: true });
  const htmlFile = path.join(out, 'report.html');
  await writeFileAtomic(htmlFile, html);
  return { html: htmlFile, pngs };
}

/**
 * The end of every training command: the run is already complete on disk, so a report that fails
 * (a font, a moved photo folder) must not fail the command. It warns, naming the retry.
 */
export async function reportOrWarn(runDir: string): Promise<ReportResult | undefined> {
  try {
    const result = await writeReport(runDir);
    emitMessage(`report: ${result.html}`);
    return result;
  } catch (err) {
    const reason = errorLine(err);
    emitMessage(`tl: warning: the run is complete but its report was not written (${reason}); retry with: tl report ${runDir}`);
    return undefined;
  }
}
