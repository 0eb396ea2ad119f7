import { Option } from 'commander';
import type { RunMetrics } from '../artifacts/run.js';
import { reportOrWarn } from '../reporting/report.js';
import { formatRunEvaluation, reportSkipped } from './output.js';

/**
 * Ctrl-C for the training commands, the one place tl maps a signal to cancellation. The first
 * Ctrl-C aborts the returned signal: training stops after the current batch, the best epoch is
 * restored and the run is written, marked interrupted. The handler is removed as it runs, so a
 * second Ctrl-C gets Node's default action and quits at once, whatever is running; the lock goes
 * with the process and the last checkpoint stays in OUT.partial for --resume.
 */
export function abortOnCtrlC(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted: stopping after this batch and writing the run (Ctrl-C again to quit now)\n');
    controller.abort();
  });
  return controller.signal;
}

/** `--resume`, shared by every training command. */
export function resumeOption(): Option {
  return new Option('--resume', 'continue the unfinished run in OUT.partial from its last checkpoint (pass the same --out and options)');
}

/**
 * What every training command does with its finished run: the skipped files and the evaluation
 * for the person, the run's path, its report, and exit status 130 when Ctrl-C cut training short.
 */
export async function finishTrainingCommand({ runDir, metrics }: { runDir: string; metrics: RunMetrics }): Promise<void> {
  reportSkipped(metrics.dataset);
  console.log(formatRunEvaluation(metrics));
  console.log(`run: ${runDir}`);
  await reportOrWarn(runDir);
  if (metrics.interrupted) process.exitCode = 130;
}
