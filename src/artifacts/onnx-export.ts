import path from 'node:path';
import { loadLayersModelFromDir } from '../models/layers-io.js';
import { RUN_FILES, RunDir, type ExportRecord } from './run.js';
import { initBackend } from '../runtime/backend.js';
import { exists, writeFileAtomic } from '../util/atomic.js';
import { fileError } from '../util/errors.js';
import { exportOnnx, OPSET } from '../models/onnx/export.js';

export interface RunExportOptions {
  /** Default: RUN/model.onnx. */
  out?: string;
  /** Bake run.json's preprocessing into the graph (input: raw 0..255 RGB). */
  withPreprocessing?: boolean;
}

/** Export a run's model to ONNX, write it atomically, and record it in run.json. An existing file is refused. */
export async function exportRunOnnx(dir: string, opts: RunExportOptions = {}): Promise<{ file: string; bytes: number; record: ExportRecord }> {
  const run = await RunDir.open(dir);
  const config = await run.config();
  const file = path.resolve(opts.out ?? path.join(run.dir, RUN_FILES.onnx));
  if (await exists(file)) throw fileError(file, 'already exists', 'pass another --out, or delete it first');
  await initBackend();
  const model = await loadLayersModelFromDir(run.dir);
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(model, { preprocessing: opts.withPreprocessing ? config.preprocessing : undefined, name: config.model });
  } finally {
    model.dispose();
  }
  await writeFileAtomic(file, bytes);
  const inside = path.relative(run.dir, file);
  const record: ExportRecord = {
    format: 'onnx',
    file: inside.startsWith('..') || path.isAbsolute(inside) ? file : inside,
    withPreprocessing: opts.withPreprocessing === true,
    opset: OPSET,
    createdAt: new Date().toISOString(),
  };
  // A later export to the same place (after deleting the file) replaces the old record.
  await run.write('config', { ...config, exports: [...(config.exports ?? []).filter((e) => e.file !== record.file), record] });
  return { file, bytes: bytes.length, record };
}
