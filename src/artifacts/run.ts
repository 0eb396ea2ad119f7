import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic, exists } from '../util/atomic.js';
import { fileError } from '../util/errors.js';
import type { PreprocessingConfig } from '../data/preprocess.js';

export type { PreprocessingConfig };

/**
 * The run directory: everything a training command produces, readable without `tl`.
 *
 *   model.json + weights.bin   the whole model, TensorFlow.js layers format
 *   labels.json                class names, index = output unit
 *   run.json                   what was trained and how (RunConfig)
 *   history.json               one EpochRecord per epoch
 *   metrics.json               RunMetrics (test evaluation, timing, backend, dataset)
 *   predictions.json           per test sample: source, true/predicted label, confidence
 *   checkpoint/                last good model while training runs (kept if interrupted)
 *   report.html + *.png        written by `tl report`
 */
export const RUN_FILES = {
  model: 'model.json',
  labels: 'labels.json',
  config: 'run.json',
  history: 'history.json',
  metrics: 'metrics.json',
  predictions: 'predictions.json',
  checkpoint: 'checkpoint',
  report: 'report.html',
  onnx: 'model.onnx',
} as const;

export interface EpochRecord {
  epoch: number;
  /** Transfer-learning and fine-tuning epochs share one history; phase tells them apart. */
  phase: 'train' | 'transfer' | 'finetune';
  loss: number;
  acc: number;
  val_loss?: number;
  val_acc?: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Evaluation {
  accuracy: number;
  /** 95% Wilson confidence interval of the accuracy, [low, high]. */
  accuracyCI95?: [number, number];
  /** Mean per-class recall. */
  balancedAccuracy?: number;
  /** Top-3 and top-5 accuracy where there are more classes than k. */
  topK?: { k: number; accuracy: number }[];
  loss: number;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] */
  confusion: number[][];
}

export interface DatasetInfo {
  name: string;
  /** e.g. "official train/test", "resplit 0.2 of test, seed 1", "folder train/, 10% validation" */
  split: string;
  seed?: number;
  trainCount: number;
  valCount: number;
  testCount: number;
  classes: number;
  skipped?: { file: string; reason: string }[];
  [key: string]: unknown;
}

export interface RunMetrics {
  /** The held-out evaluation; `evaluatedOn` says which set it was measured on. */
  test: Evaluation;
  /** 'test': images never used for training or choosing the epoch; 'validation': the split that chose it (--test-split 0). */
  evaluatedOn?: 'test' | 'validation';
  /** The epoch whose weights the run keeps, and whether that is the best-validation-loss one. */
  keptEpoch?: number;
  restoredBest?: boolean;
  /** What makes the figures weaker than they look (a small test set, imbalanced classes). */
  warnings?: string[];
  trainSeconds: number;
  backend: string;
  /** The inference engine of the frozen base's features and the test predictions (onnxruntime or tfjs). */
  engine?: string;
  dataset: DatasetInfo;
  imagesPerSecond?: number;
  bestEpoch?: number;
  stoppedEarly?: boolean;
  interrupted?: boolean;
}

/** Where a sample came from, so a report can draw it again. */
export type SampleSource =
  | { kind: 'dataset'; dataset: string; split: string; index: number }
  | { kind: 'file'; path: string };

export interface PredictionRecord {
  source: SampleSource;
  label: number;
  predicted: number;
  confidence: number;
}

export interface RunConfig {
  kind: 'custom' | 'transfer' | 'finetune';
  createdAt: string;
  model: string;
  /** [height, width, channels] the model takes */
  inputShape: [number, number, number];
  /** How raw pixels (0..255) become model input; reproduced exactly at predict time. */
  preprocessing: PreprocessingConfig;
  hyperparameters: Record<string, unknown>;
  seed: number;
  parent?: string;
  backbone?: { name: string; weights: string; weightsSha256?: string; featureLayer?: string };
  dataset: { name: string; source?: string };
  command: string;
  /** Files written by `tl export`. */
  exports?: ExportRecord[];
}

export interface ExportRecord {
  format: 'onnx';
  /** Relative to the run directory when inside it. */
  file: string;
  /** Whether the run's preprocessing is in the graph (input: raw 0..255 pixels). */
  withPreprocessing: boolean;
  opset: number;
  createdAt: string;
}


/** One line when a command gets a run of the wrong kind (a custom run to finetune, say). */
export function requireRunKind(dir: string, config: RunConfig, kinds: readonly RunConfig['kind'][], fix: string): void {
  if (!kinds.includes(config.kind)) throw fileError(dir, `is a ${config.kind} run, not a ${kinds.join(' or ')} run`, fix);
}

export async function readJson<T>(file: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw fileError(file, `missing ${what}`, 'is this a run directory written by tl?');
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw fileError(file, `${what} is not valid JSON`, 'the run is damaged; train it again');
  }
}

export class RunDir {
  constructor(readonly dir: string) {}

  file(name: keyof typeof RUN_FILES): string {
    return path.join(this.dir, RUN_FILES[name]);
  }

  /** Fails with one line unless `dir` holds a finished (or checkpointed) run. */
  static async open(dir: string): Promise<RunDir> {
    const run = new RunDir(path.resolve(dir));
    if (!(await exists(run.file('config'))) || !(await exists(run.file('model')))) {
      throw fileError(dir, 'is not a tl run (no run.json/model.json)', 'pass a directory written by tl train, tl finetune or tl custom train');
    }
    return run;
  }

  config(): Promise<RunConfig> {
    return readJson(this.file('config'), 'run.json');
  }
  labels(): Promise<string[]> {
    return readJson(this.file('labels'), 'labels.json');
  }
  history(): Promise<EpochRecord[]> {
    return readJson(this.file('history'), 'history.json');
  }
  metrics(): Promise<RunMetrics> {
    return readJson(this.file('metrics'), 'metrics.json');
  }
  predictions(): Promise<PredictionRecord[]> {
    return readJson(this.file('predictions'), 'predictions.json');
  }

  write(name: 'config' | 'labels' | 'history' | 'metrics' | 'predictions', value: unknown): Promise<void> {
    return writeJsonAtomic(this.file(name), value);
  }
}
