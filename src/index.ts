/**
 * The library behind the `tl` CLI. Start with `createRuntime` (train, finetune, trainCustom, load
 * -> classify / evaluate); below it, the building blocks in pipeline order: runtime -> data ->
 * backbones -> training -> evaluation -> artifacts and reports. Every command is a thin wrapper
 * over one of these.
 */
export { createRuntime, type Runtime, type RuntimeOptions, type Classifier } from './library.js';
export { withContext, type TlContext } from './runtime/context.js';
export { initBackend, runtimeInfo, type BackendName } from './runtime/backend.js';
export { chooseEngine, onnxEngine, tfjsEngine, engineInfo, type EngineName, type InferenceEngine, type ForwardPass } from './runtime/engine.js';
export { engineForModel, tfjsEngineForModel } from './models/engine.js';

export { fetchDataset, loadDataset, readSample, stratifiedSplit, type LoadedDataset, type ImageSet } from './data/datasets.js';
export { importCsv } from './data/csv.js';
export { openImageFolder } from './data/image-folder.js';
export { decodeImage } from './data/images.js';

export { getBackbone, listBackbones, loadBackbone, readWeightsFile, writeKerasH5Weights, writeTfjsWeights } from './backbones/index.js';
export type { BackboneSpec } from './backbones/types.js';
export { fetchBackboneWeights } from './backbones/fetch.js';

export { buildCustomModel, CUSTOM_MODELS, type CustomModelName } from './models/custom.js';
export { fit, type BatchSource, type FitOptions, type FitResult, type TrainingCallbacks, type BatchEnd } from './training/loop.js';
export { trainCustom, evaluateCustomRun, type CustomTrainOptions } from './training/custom.js';
export { trainTransfer, type TransferTrainOptions, type TransferTrainResult } from './training/transfer.js';
export { finetune, type FinetuneOptions, type FinetuneResult } from './training/finetune.js';
export { openRun, predictFiles, evaluateRun, classifyImageNet, loadImageNetClassifier } from './training/predict.js';
export { evaluateModel } from './training/metrics.js';

export { RunDir, type RunConfig, type RunMetrics, type EpochRecord, type Evaluation } from './artifacts/run.js';
export { loadLayersModelFromDir, saveLayersModelToDir } from './models/layers-io.js';
export { exportOnnx, type OnnxExportOptions } from './models/onnx/export.js';
export { exportRunOnnx } from './artifacts/onnx-export.js';
export { writeReport, reportOrWarn } from './reporting/report.js';
export { runSweep } from './sweep/run.js';
