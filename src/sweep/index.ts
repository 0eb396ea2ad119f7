export { runSweep, runSweepSpec, configRunDir, defaultSweepOut, type SweepOptions, type SweepSummary } from './run.js';
export { expandGrid, parseSweepSpec, readSweepSpec, configId, sweptKeys, type SweepSpec, type SweepConfig, type PlotSpec, type SweepCommand } from './spec.js';
export { allowedKeys, defaultTrainer, type SweepTrainer } from './trainers.js';
export { resultsCsv, resultsMarkdown, formatParam, type SweepResult, type SweepStatus } from './results.js';
export { plotsFor, sweepPlotSpec } from './plots.js';
