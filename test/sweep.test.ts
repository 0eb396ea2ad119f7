import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { promises as fs, readFileSync, existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { tempDir, tlBin, shared } from './helpers.js';
import { RunDir, type RunMetrics } from '../src/artifacts/run.js';
import { expandGrid, parseSweepSpec, readSweepSpec, runSweepSpec, allowedKeys, configId, type SweepTrainer, type Options } from '../src/sweep/index.js';

const SPEC = parseSweepSpec(
  {
    name: 'unit',
    base: { dataset: 'fashion-mnist', model: 'mlp', epochs: 1, mlp: { dropout: 0 } },
    grid: { 'mlp.hidden': [[], [32]], lr: [0.01, 0.001] },
  },
  'unit.json',
  allowedKeys,
);

/**
 * A stand-in for trainCustom that records its calls and writes the files a finished run has;
 * configurations whose lr is in `failOn` throw, as a diverging or misconfigured run would.
 */
function recordingTrainer(failOn: number[] = [], interruptOn: number[] = []) {
  const calls: Options[] = [];
  const trainer: SweepTrainer = async (_command, options, runDir) => {
    calls.push(options);
    if (failOn.includes(options.lr as number)) throw new Error(`lr ${options.lr} diverged: loss is NaN\n    at stack frames that must not reach the table`);
    const hidden = (options.mlp as { hidden: number[] }).hidden;
    const metrics = {
      test: { accuracy: 0.5 + hidden.length / 10 + (options.lr as number), loss: 1, perClass: [], confusion: [] },
      trainSeconds: 2,
      backend: 'test',
      dataset: { name: 'fashion-mnist', split: 'x', trainCount: 1, valCount: 0, testCount: 1, classes: 10 },
      interrupted: interruptOn.includes(options.lr as number),
    } as RunMetrics;
    await fs.mkdir(runDir, { recursive: true });
    const run = new RunDir(runDir);
    await run.write('history', [{ epoch: 1, phase: 'train', loss: 1, acc: 0.5, lr: 0.01, seconds: 1, imagesPerSecond: 10 }]);
    await run.write('metrics', metrics);
    return { runDir, metrics };
  };
  return { trainer, calls };
}

test('the grid expands to every combination with nested options set and stable ids', () => {
  const configs = expandGrid(SPEC);
  assert.equal(configs.length, 4);
  assert.deepEqual(configs.map((c) => [(c.options.mlp as { hidden: number[] }).hidden, c.options.lr]), [[[], 0.01], [[], 0.001], [[32], 0.01], [[32], 0.001]]);
  for (const c of configs) assert.equal((c.options.mlp as { dropout: number }).dropout, 0, 'base nested options are kept');
  assert.equal(new Set(configs.map((c) => c.id)).size, 4);
  // Key order in the spec does not change a configuration's id.
  assert.equal(configId('custom-train', { lr: 1, model: 'mlp' }), configId('custom-train', { model: 'mlp', lr: 1 }));
  assert.throws(() => parseSweepSpec({ grid: { 'mlp.hiden': [[1]] } }, 's.json', allowedKeys), /^TlError: s\.json: unknown option "mlp\.hiden" for custom-train; use one of/);
  assert.throws(() => parseSweepSpec({ grid: { lr: 0.1 } }, 's.json'), /s\.json: grid key "lr" is not a non-empty list/);
});

test('a failing configuration is recorded with one line and the rest still run', async () => {
  const out = tempDir('tl-sweep-');
  const { trainer, calls } = recordingTrainer([0.01]);
  const summary = await runSweepSpec(SPEC, out, { trainer, log: () => {} });
  assert.equal(calls.length, 4);
  assert.deepEqual(summary.results.map((r) => r.status), ['failed', 'trained', 'failed', 'trained']);
  const failed = summary.results[0]!;
  assert.equal(failed.error, 'lr 0.01 diverged: loss is NaN');
  const csv = readFileSync(summary.csv, 'utf8').trim().split('\n');
  assert.equal(csv.length, 5);
  assert.match(csv[0]!, /^id,status,mlp\.hidden,lr,testAccuracy,/);
  assert.match(csv[1]!, /,failed,\[\],0\.01,.*lr 0\.01 diverged: loss is NaN$/);
  assert.match(csv[4]!, /,trained,\[32\],0\.001,0\.6010,/);
  const md = readFileSync(summary.markdown, 'utf8');
  assert.match(md, /\| 32 \| 0\.001 \| \*\*60\.10%\*\* \|/);
  assert.match(md, /failed: lr 0\.01 diverged/);
  assert.ok(summary.plots.length >= 1);
  for (const p of summary.plots) assert.ok((await sharp(p).metadata()).width! > 100);
});

test('a resumed sweep reads finished configurations back and retries only the failed ones', async () => {
  const out = tempDir('tl-sweep-');
  const first = recordingTrainer([0.01]);
  await runSweepSpec(SPEC, out, { trainer: first.trainer, log: () => {}, plots: false });
  const second = recordingTrainer();
  const summary = await runSweepSpec(SPEC, out, { trainer: second.trainer, log: () => {}, plots: false });
  assert.deepEqual(second.calls.map((o) => o.lr), [0.01, 0.01], 'only the two failed configurations are trained again');
  assert.deepEqual(summary.results.map((r) => r.status), ['trained', 'reused', 'trained', 'reused']);
  assert.equal(summary.results[1]!.testAccuracy, 0.501);
  assert.equal(summary.results[1]!.epochs, 1);
  const third = recordingTrainer();
  const again = await runSweepSpec(SPEC, out, { trainer: third.trainer, log: () => {}, plots: false });
  assert.equal(third.calls.length, 0);
  assert.ok(again.results.every((r) => r.status === 'reused'));
});

test('tl sweep trains real configurations, writes results and plots, and resumes', async () => {
  const home = tempDir('tl-sweep-home-');
  const env = { ...process.env, TL_HOME: home };
  execFileSync(process.execPath, [tlBin, 'datasets', 'fetch', 'fashion-mnist', '--from', shared('datasets', 'fashion-mnist')], { env, stdio: 'pipe' });
  const dir = tempDir('tl-sweep-cli-');
  const specFile = path.join(dir, 'spec.json');
  const spec = {
    name: 'tiny-learning-curve',
    base: { dataset: 'fashion-mnist', model: 'mlp', epochs: 1, valSplit: 0.05, mlp: { hidden: [32], dropout: 0 } },
    grid: [{ trainLimit: [100, 1000] }, { trainLimit: [1000], valSplit: [1.5] }],
  };
  await fs.writeFile(specFile, JSON.stringify(spec));
  const out = path.join(dir, 'out');
  const run = () => spawnSync(process.execPath, [tlBin, 'sweep', specFile, '--out', out], { env, encoding: 'utf8' });
  const first = run();
  assert.equal(first.status, 1, `one configuration fails, so the exit code says so\n${first.stderr}`);
  const lines = readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n').slice(1);
  const rows = lines.map((l) => l.split(','));
  assert.deepEqual(rows.map((r) => r[1]), ['trained', 'trained', 'failed']);
  const acc = rows.slice(0, 2).map((r) => Number(r[4]));
  assert.ok(acc.every((a) => a > 0.1 && a <= 1), `test accuracies ${acc}`);
  assert.match(lines[2]!, /,"--val-split must be in \[0, 1\) \(got 1\.5\)"$/, 'the error is one CSV field');
  assert.ok(existsSync(path.join(out, 'accuracy-vs-trainLimit.png')));
  assert.match(readFileSync(path.join(out, 'results.md'), 'utf8'), /!\[Learning curve: test accuracy vs training-set size\]\(accuracy-vs-trainLimit\.png\)/);

  const second = run();
  const again = readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  assert.deepEqual(again.map((r) => r[1]), ['reused', 'reused', 'failed'], second.stderr);
  assert.deepEqual(again.slice(0, 2).map((r) => Number(r[4])), acc, 'finished results are read back unchanged');
});

test('Ctrl-C during a configuration stops the sweep; the next run sets that run aside and trains it again', async () => {
  const out = tempDir('tl-sweep-');
  const first = recordingTrainer([], [0.001]);
  const stopped = await runSweepSpec(SPEC, out, { trainer: first.trainer, log: () => {}, plots: false });
  assert.deepEqual(stopped.results.map((r) => r.status), ['trained', 'interrupted']);
  assert.equal(first.calls.length, 2, 'nothing after the interrupted configuration was started');
  assert.match(readFileSync(stopped.markdown, 'utf8'), /1 interrupted \(run the sweep again to resume\)/);
  const second = recordingTrainer();
  const resumed = await runSweepSpec(SPEC, out, { trainer: second.trainer, log: () => {}, plots: false });
  assert.deepEqual(resumed.results.map((r) => r.status), ['reused', 'trained', 'trained', 'trained']);
  assert.deepEqual(second.calls.map((o) => o.lr), [0.001, 0.01, 0.001]);
  assert.ok(existsSync(`${resumed.results[1]!.runDir}.interrupted`), 'the interrupted run is kept beside the new one');
});

test('every example spec in examples/sweeps parses against the trainers\' options', async () => {
  const dir = path.join(path.dirname(tlBin), '..', 'examples', 'sweeps');
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    const spec = await readSweepSpec(path.join(dir, f), allowedKeys);
    assert.ok(expandGrid(spec).length >= 2, f);
  }
});
