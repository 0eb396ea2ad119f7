/**
 * Interrupting, killing, resuming and racing training runs, through the CLI as a user does it.
 * Progress is read from --log-json (one line per batch), so every check counts batches, not seconds.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
import { shared, tempDir, tlBin } from './helpers.js';
import { flowerSubset, mobilenet025 } from './transfer-fixtures.js';
import { fetchDataset } from '../src/data/datasets.js';
import type { EpochRecord, RunMetrics } from '../src/artifacts/run.js';

const home = tempDir('tl-control-home-');
const env = { ...process.env, TL_HOME: home, TL_QUIET: '1' };

before(async () => {
  process.env.TL_HOME = home;
  await fetchDataset('fashion-mnist', { from: shared('datasets', 'fashion-mnist'), quiet: true });
});

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** A small seed-mlp run: 3,000 images, batch 64 -> 47 batches an epoch. */
function trainArgs(out: string, log: string, epochs = 3): string[] {
  return ['--log-json', log, 'custom', 'train', '--dataset', 'fashion-mnist', '--model', 'seed-mlp', '--epochs', String(epochs), '--batch-size', '64', '--train-limit', '3000', '--patience', '0', '--out', out];
}

interface LogEvent {
  event: string;
  epoch?: number;
}

/** The complete lines of the run's log; the last one may still be half-written while the run goes on. */
function events(log: string): LogEvent[] {
  if (!existsSync(log)) return [];
  const lines = readFileSync(log, 'utf8').split('\n');
  lines.pop(); // after the last newline: empty, or a line being written
  return lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as LogEvent);
}

const batches = (log: string) => events(log).filter((e) => e.event === 'batch').length;

/** Poll until `ready()` holds (the child is where the test wants it), or the child has exited. */
async function waitFor(child: ChildProcess, ready: () => boolean): Promise<void> {
  while (!ready()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('the run ended before the test could act');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

function start(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [tlBin, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, stderr: () => err };
}

function run(args: string[]) {
  return spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env });
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0]!;
}

test('Ctrl-C mid-epoch stops training within 2 batches and writes the run marked interrupted', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'run');
  const log = path.join(dir, 'log.jsonl');
  const { child, stderr } = start(trainArgs(out, log, 50));
  // Mid-epoch 2: after the first checkpoint, well inside the 47 batches of the epoch.
  await waitFor(child, () => batches(log) >= 47 + 20);
  const atSignal = batches(log);
  child.kill('SIGINT');
  const { code } = await exited(child);
  assert.equal(code, 130, stderr());
  const after = batches(log) - atSignal;
  assert.ok(after <= 2, `${after} batches ran after Ctrl-C`);
  const metrics = readJson<RunMetrics>(path.join(out, 'metrics.json'));
  assert.equal(metrics.interrupted, true);
  assert.equal(readJson<EpochRecord[]>(path.join(out, 'history.json')).length, 1, 'only the completed epoch is in the history');
  assert.ok(!existsSync(`${out}.partial`) && !existsSync(`${out}.lock`), 'workspace or lock left behind');
});

test('a second Ctrl-C quits at once and keeps the last checkpoint, which --resume continues', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'run');
  const log = path.join(dir, 'log.jsonl');
  const { child, stderr } = start(trainArgs(out, log, 50));
  await waitFor(child, () => batches(log) >= 47 + 10);
  child.kill('SIGINT');
  // A person's second Ctrl-C comes after the first was seen; it lands while the run is still being evaluated and written.
  await waitFor(child, () => stderr().includes('interrupted:'));
  child.kill('SIGINT');
  const { signal } = await exited(child);
  assert.equal(signal, 'SIGINT', 'the second Ctrl-C ends the process by the signal itself');
  assert.ok(!existsSync(out), 'no run is written when quitting at once');
  assert.ok(existsSync(path.join(`${out}.partial`, 'checkpoint', 'state.json')), 'the checkpoint of epoch 1 is kept');

  const refused = run(trainArgs(out, path.join(dir, 'again.jsonl'), 2));
  assert.equal(refused.status, 2);
  assert.match(oneLine(refused.stderr), /run\.partial: holds an unfinished run; continue it with --resume, or delete .* to start over/);

  const resumed = run([...trainArgs(out, path.join(dir, 'resume.jsonl'), 2), '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming after epoch 1/);
  const history = readJson<EpochRecord[]>(path.join(out, 'history.json'));
  assert.deepEqual(history.map((h) => h.epoch), [1, 2]);
  assert.ok(!existsSync(`${out}.partial`));
});

test('a run killed mid-epoch and resumed ends with the weights of an uninterrupted run', async () => {
  const dir = tempDir();
  const whole = path.join(dir, 'whole');
  assert.equal(run(trainArgs(whole, path.join(dir, 'whole.jsonl'))).status, 0);

  const out = path.join(dir, 'killed');
  const log = path.join(dir, 'killed.jsonl');
  const { child } = start(trainArgs(out, log));
  await waitFor(child, () => batches(log) >= 47 + 25); // mid-epoch 2
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(!existsSync(out));
  assert.equal(readJson<{ epochsDone: number }>(path.join(`${out}.partial`, 'checkpoint', 'state.json')).epochsDone, 1);

  const other = run([...trainArgs(out, path.join(dir, 'other.jsonl')), '--lr', '0.01', '--resume']);
  assert.notEqual(other.status, 0);
  assert.match(oneLine(other.stderr), /was written by a run with other options \(hyperparameters\.lr was 0\.001, now 0\.01\); resume with the options it was started with/);

  const resumed = run([...trainArgs(out, path.join(dir, 'resumed.jsonl')), '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(batches(path.join(dir, 'resumed.jsonl')), 2 * 47, 'epochs 2 and 3 only');
  assert.ok(readFileSync(path.join(out, 'weights.bin')).equals(readFileSync(path.join(whole, 'weights.bin'))), 'weights differ from the uninterrupted run');
  const [a, b] = [whole, out].map((d) => readJson<EpochRecord[]>(path.join(d, 'history.json')).map((h) => [h.loss, h.val_loss]));
  assert.deepEqual(b, a);
});

test('two runs with the same --out: the second refuses at once, the first completes', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'run');
  const log = path.join(dir, 'first.jsonl');
  const first = start(trainArgs(out, log, 2));
  await waitFor(first.child, () => batches(log) >= 1);
  const second = run(trainArgs(out, path.join(dir, 'second.jsonl'), 2));
  assert.equal(second.status, 2);
  assert.match(oneLine(second.stderr), /run: is in use by another tl run \(pid \d+, lock .*run\.lock\); wait for it to finish or choose another --out/);
  assert.equal(batches(path.join(dir, 'second.jsonl')), 0, 'the second run did no work');
  const { code } = await exited(first.child);
  assert.equal(code, 0, first.stderr());
  assert.equal(readJson<EpochRecord[]>(path.join(out, 'history.json')).length, 2);
  assert.ok(!existsSync(`${out}.lock`) && !existsSync(`${out}.partial`));

  // The finished run is never replaced, not even by the run that waited.
  const third = run(trainArgs(out, path.join(dir, 'third.jsonl'), 1));
  assert.match(oneLine(third.stderr), /already exists; pass a new --out/);
});

test('a lock and temp files left by a dead process are taken over and cleaned up', () => {
  const dir = tempDir();
  const out = path.join(dir, 'run');
  const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default: never a live process
  writeFileSync(`${out}.lock`, JSON.stringify({ pid: deadPid, host: os.hostname(), started: new Date().toISOString() }));
  const staleTemp = path.join(dir, `.run.tmp-${deadPid}-0badf00d`);
  mkdirSync(staleTemp);
  const liveTemp = path.join(dir, `.other.tmp-${process.pid}-0badf00d`);
  writeFileSync(liveTemp, 'a live writer');
  const r = run(trainArgs(out, path.join(dir, 'log.jsonl'), 1));
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!existsSync(staleTemp), 'stale temp kept');
  assert.ok(existsSync(liveTemp), 'a live process temp was removed');
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('run')).sort(), ['run']);
});

test('an --out that cannot be written fails at once with one line, before any work', () => {
  const dir = tempDir();
  const file = path.join(dir, 'a-file');
  writeFileSync(file, '');
  const cases: [string, RegExp][] = [
    ['/proc/tl-test/run', /^tl: \/proc\/tl-test\/run: not writable \(.*does not accept new entries\); choose another --out$/],
    [path.join(file, 'sub', 'run'), /^tl: .*a-file\/sub\/run: cannot be created \(.*a-file is a file, not a folder\); choose another --out$/],
  ];
  const readOnly = path.join(dir, 'ro');
  mkdirSync(readOnly);
  // Root ignores permission bits, so a read-only file system is the honest test; skipped where mounting is not allowed.
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly]).status === 0;
  if (mounted) cases.push([path.join(readOnly, 'run'), /^tl: .*ro\/run: not writable \(read-only file system\); choose another --out$/]);
  try {
    for (const [i, [out, pattern]] of cases.entries()) {
      const log = path.join(dir, `${i}.jsonl`);
      const r = run(trainArgs(out, log, 1));
      assert.equal(r.status, 2, out);
      assert.match(oneLine(r.stderr), pattern);
      assert.equal(batches(log), 0, 'work started before the check');
    }
    if (mounted) {
      const r = spawnSync(process.execPath, [tlBin, 'datasets', 'fetch', 'fashion-mnist', '--from', shared('datasets', 'fashion-mnist')], { encoding: 'utf8', env: { ...env, TL_HOME: path.join(readOnly, 'home') } });
      assert.equal(r.status, 2);
      assert.match(oneLine(r.stderr), /ro\/home\/datasets\/fashion-mnist: not writable \(read-only file system\); set TL_HOME to a writable folder/);
    }
  } finally {
    if (mounted) spawnSync('umount', [readOnly]);
  }
});

/**
 * Kill `args` (a training command) with SIGKILL once its log shows a batch of epoch `killIn` (the
 * checkpoint of the epoch before is then complete), resume it, and compare with an uninterrupted run.
 */
async function killResumeAndCompare(dir: string, args: (out: string) => string[], killIn: number): Promise<void> {
  mkdirSync(dir);
  const whole = path.join(dir, 'whole');
  const first = run(['--log-json', path.join(dir, 'whole.jsonl'), ...args(whole)]);
  assert.equal(first.status, 0, first.stderr);
  const out = path.join(dir, 'killed');
  const log = path.join(dir, 'killed.jsonl');
  const { child } = start(['--log-json', log, ...args(out)]);
  await waitFor(child, () => events(log).some((e) => e.event === 'batch' && e.epoch! >= killIn));
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(!existsSync(out) && existsSync(path.join(`${out}.partial`, 'checkpoint', 'state.json')));
  const resumed = run(['--log-json', path.join(dir, 'resumed.jsonl'), ...args(out), '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming after epoch \d+/);
  assert.ok(readFileSync(path.join(out, 'weights.bin')).equals(readFileSync(path.join(whole, 'weights.bin'))), 'weights differ from the uninterrupted run');
  const [a, b] = [whole, out].map((d) => readJson<EpochRecord[]>(path.join(d, 'history.json')).map((h) => [h.epoch, h.loss, h.val_loss]));
  assert.deepEqual(b, a);
}

test('tl train and tl finetune killed mid-epoch resume to the weights of an uninterrupted run', async () => {
  const data = await flowerSubset('train', 8);
  const dir = tempDir();
  const common = ['--backbone', 'mobilenet', '--weights', mobilenet025(), '--batch-size', '8', '--seed', '3'];
  await killResumeAndCompare(path.join(dir, 'train'), (out) => ['train', ...common, '--epochs', '12', '--out', out, data], 3);

  const parent = path.join(dir, 'parent');
  assert.equal(run(['train', ...common, '--epochs', '2', '--out', parent, data]).status, 0);
  // Fine-tuning epochs continue the parent's numbering: 3, 4, 5.
  await killResumeAndCompare(path.join(dir, 'finetune'), (out) => ['finetune', parent, '--epochs', '3', '--lr', '1e-4', '--out', out], 4);
});
