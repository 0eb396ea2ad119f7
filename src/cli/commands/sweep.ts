import type { Command } from 'commander';
import { runSweep } from '../../sweep/run.js';
import { abortOnCtrlC } from '../run-control.js';

export function register(program: Command): void {
  program
    .command('sweep')
    .description('train a grid of configurations (resumable) and tabulate and plot their test results')
    .argument('<spec>', 'sweep spec JSON (see examples/sweeps/)')
    .option('--out <dir>', 'output folder: one run per configuration, results.csv, results.md, plots (default runs/sweeps/<name>)')
    .action(async (spec: string, opts: { out?: string }) => {
      const summary = await runSweep(spec, { out: opts.out, signal: abortOnCtrlC() });
      console.log(summary.markdown);
      // 130 like a shell after Ctrl-C; 1 when a configuration failed (the others did run).
      if (summary.results.some((r) => r.status === 'interrupted')) process.exitCode = 130;
      else if (summary.results.some((r) => r.status === 'failed')) process.exitCode = 1;
    });
}
