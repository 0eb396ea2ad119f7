import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { createProgress, jsonLogSink, logEvent } from '../src/runtime/progress.js';
import { withContext } from '../src/runtime/context.js';
import { tempDir, tlBin } from './helpers.js';

/** A stream that is not a terminal (a CI log or a pipe), collecting what is written. */
function pipeStream(): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => chunks.join('') };
}

test('without a terminal, progress is plain lines: no escape codes, no carriage returns', () => {
  const out = pipeStream();
  const p = createProgress({ label: 'epoch 1/2', total: 3, unit: 'batches', stream: out.stream, intervalMs: 0, quiet: false });
  p.tick(1, { loss: 0.5, acc: 0.81234 });
  p.tick(1);
  p.tick(1, { loss: 0.25, acc: 0.9 });
  p.done('epoch 1: done');
  const lines = out.text().split('\n').filter(Boolean);
  assert.deepEqual(lines.slice(0, 3).map((l) => l.split(' ETA ')[0]), ['epoch 1/2: 1/3 batches', 'epoch 1/2: 2/3 batches', 'epoch 1/2: 3/3 batches']);
  assert.match(lines[0]!, /loss 0\.5000 {2}acc 0\.8123$/);
  assert.match(lines[1]!, /loss 0\.5000/, 'the last values are repeated until new ones arrive');
  assert.match(lines[2]!, /ETA 0s {2}loss 0\.2500 {2}acc 0\.9000$/);
  assert.equal(lines[3], 'epoch 1: done');
  assert.doesNotMatch(out.text(), /[\u001b\r]/);
});

test('a loop shorter than one interval stays silent except for its summary; quiet silences everything', () => {
  const out = pipeStream();
  const p = createProgress({ label: 'evaluate', total: 5, stream: out.stream, quiet: false, intervalMs: Infinity });
  for (let i = 0; i < 5; i++) p.tick();
  p.done('evaluated');
  assert.equal(out.text(), 'evaluated\n');
  const silent = pipeStream();
  const q = createProgress({ label: 'x', total: 2, stream: silent.stream, quiet: true, intervalMs: 0 });
  q.tick();
  q.done('summary');
  assert.equal(silent.text(), '');
});

test('--log-json: one JSON object per event, each with a timestamp, only within the operation that has the sink', () => {
  const file = path.join(tempDir(), 'events.jsonl');
  withContext({ onEvent: jsonLogSink(file) }, () => {
    logEvent({ event: 'epoch', epoch: 1, loss: 0.5 });
    logEvent({ event: 'epoch', epoch: 2, loss: 0.25, note: 'line\nbreak' });
  });
  logEvent({ event: 'ignored' });
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a newline');
  assert.equal(lines.length, 2);
  const events = lines.map((l) => JSON.parse(l) as { event: string; epoch: number; time: string; note?: string });
  assert.deepEqual(events.map((e) => e.epoch), [1, 2]);
  assert.equal(events[1]!.note, 'line\nbreak');
  for (const e of events) assert.ok(!Number.isNaN(Date.parse(e.time)));
});

test('an unwritable --log-json path fails at once with one line', () => {
  const r = spawnSync(process.execPath, [tlBin, '--log-json', '/nonexistent-dir/x.jsonl', 'info'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.trim(), /^tl: \/nonexistent-dir\/x\.jsonl: cannot be written \(ENOENT\); pass a writable path to --log-json$/);
});

test('without a stream in its context, progress is silent: the library never writes to the terminal itself', () => {
  const written: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(chunk), true)) as typeof process.stderr.write;
  try {
    const p = createProgress({ label: 'epoch', total: 2, quiet: false, intervalMs: 0 });
    p.tick();
    p.tick();
    p.done('summary');
  } finally {
    process.stderr.write = original;
  }
  assert.deepEqual(written, []);
  const out = pipeStream();
  withContext({ progressStream: out.stream }, () => {
    const p = createProgress({ label: 'epoch', total: 1, quiet: false, intervalMs: 0 });
    p.tick();
    p.done('summary');
  });
  assert.match(out.text(), /^epoch: 1\/1 ETA 0s\nsummary\n$/);
});

/** A terminal of the given width (what cli-progress sees on a TTY), collecting what is drawn. */
function terminalStream(columns: number): { stream: NodeJS.WriteStream; lines: () => string[] } {
  const out = pipeStream();
  Object.assign(out.stream, { isTTY: true, columns });
  // Each redraw starts at column 0; keep the text of every drawn line, escape codes removed.
  const lines = () => out.text().split(/\r|\n|\u001b\[\d*G/).map((l) => l.replace(/\u001b(\[[0-9;?]*[A-Za-z]|[78])/g, '')).filter((l) => l.trim());
  return { stream: out.stream, lines };
}

test('on a terminal the bar fits its width: ETA and loss stay visible at 80 columns and the bar grows on wider ones', () => {
  for (const columns of [80, 60, 160]) {
    const term = terminalStream(columns);
    const p = createProgress({ label: 'head epoch 3/10', total: 120, unit: 'batches', stream: term.stream, quiet: false });
    p.tick(60, { loss: 0.123456, acc: 0.9512, val_loss: 0.2, val_acc: 0.93 });
    p.done();
    const drawn = term.lines().at(-1)!;
    assert.ok(drawn.length < columns, `${drawn.length} < ${columns}: ${drawn}`);
    assert.match(drawn, /^head epoch 3\/10 .*50% .*\| ETA \S+ \| loss 0\.1235 {2}acc 0\.9512/);
    if (columns === 160) assert.match(drawn, /\[[█░]{40}\] 50% 60\/120 batches \| ETA \S+ \| loss 0\.1235 {2}acc 0\.9512 {2}val_loss 0\.2000 {2}val_acc 0\.9300$/u, 'everything, with a full bar, where there is room');
  }
});
