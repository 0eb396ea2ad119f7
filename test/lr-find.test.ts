import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { lrFind } from '../src/training/lr-find.js';
import { LR_FIND_FILE, lrFindSpec, readLrFindResult, saveLrFindResult } from '../src/reporting/lr-find-chart.js';
import { renderVegaLite } from '../src/reporting/vega.js';
import { TlError } from '../src/util/errors.js';
import { tempDir } from './helpers.js';
import { flowerSubset, mobilenet025 } from './transfer-fixtures.js';

process.env.TL_HOME = tempDir('tl-home-');

test('lr-find on real flower photos: loss against an exponentially growing rate, a suggestion below the lowest loss, a PNG plot', async () => {
  const data = await flowerSubset('train', 12);
  const result = await lrFind({ source: data, backbone: 'mobilenet', weights: mobilenet025(), batchSize: 8, steps: 60 });
  const lrs = result.points.map((p) => p.lr);
  assert.equal(lrs[0], 1e-7);
  for (let i = 1; i < lrs.length; i++) assert.ok(Math.abs(lrs[i]! / lrs[i - 1]! - (1e8) ** (1 / 59)) < 1e-9, 'each step multiplies the rate by the same factor');
  assert.ok(result.suggestedLr > 1e-6 && result.suggestedLr <= result.minLossLr, `suggested ${result.suggestedLr}, lowest loss at ${result.minLossLr}`);
  const first = result.points.slice(0, 5).reduce((a, p) => a + p.smoothed, 0) / 5;
  const lowest = Math.min(...result.points.map((p) => p.smoothed));
  assert.ok(lowest < first * 0.9, `the head learns somewhere in the range (${first} -> ${lowest})`);
  const chart = await renderVegaLite(lrFindSpec(result));
  assert.deepEqual([...chart.png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');

  // What a run keeps for its report: the result as it was, none before, a reason for a damaged file.
  const run = tempDir('tl-run-');
  assert.equal(await readLrFindResult(run), undefined);
  await saveLrFindResult(path.join(run, LR_FIND_FILE), result);
  assert.deepEqual(await readLrFindResult(run), { result: JSON.parse(JSON.stringify(result)) });
  await fs.writeFile(path.join(run, LR_FIND_FILE), '{"points": []}');
  assert.match(JSON.stringify(await readLrFindResult(run)), /lr-find.json is not a result of tl lr-find; run it again/);
});

test('lr-find on a run of the wrong kind, or a folder without --backbone, fails with one line', async () => {
  const run = tempDir('tl-run-');
  await fs.writeFile(path.join(run, 'model.json'), '{}');
  await fs.writeFile(path.join(run, 'run.json'), JSON.stringify({ kind: 'custom', hyperparameters: {}, inputShape: [28, 28, 1], dataset: { name: 'fashion-mnist' } }));
  await assert.rejects(lrFind({ source: run }), (e) => e instanceof TlError && /is a custom run, not a transfer run; lr-find takes a tl train run/.test(e.message) && !e.message.includes('\n'));
  await assert.rejects(lrFind({ source: await flowerSubset('train', 2) }), (e) => e instanceof TlError && /--backbone is required for a data folder/.test(e.message));
});
