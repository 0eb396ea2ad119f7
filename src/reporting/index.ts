export { writeReport, reportOrWarn, REPORT_FIGURES, type ReportOptions, type ReportResult } from './report.js';
export { renderVegaLite, type RenderedChart } from './vega.js';
export { curvesSpec, confusionSpec } from './charts.js';
export { mostConfusedPairs, pickSamples, pickMisclassified, type ConfusedPair } from './analysis.js';
export { type SampleLoader } from './grids.js';
