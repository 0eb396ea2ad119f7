import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { writeReport } from '../../reporting/report.js';
import { logEvent } from '../../runtime/progress.js';

/** Best effort: a desktop opens the page in its browser; a headless machine just gets the path. */
function openInBrowser(file: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [file], { detached: true, stdio: 'ignore' });
  child.on('error', () => console.error(`tl: could not start ${opener}; open ${file} in a browser`));
  child.unref();
}

export function register(program: Command): void {
  program
    .command('report')
    .description('write report.html (self-contained) and one PNG per figure into a run directory')
    .argument('<run>', 'run directory written by tl train, tl finetune or tl custom train')
    .option('--open', 'open the report in the default browser')
    .action(async (run: string, opts: { open?: boolean }) => {
      const result = await writeReport(run);
      logEvent({ event: 'report', html: result.html, pngs: result.pngs });
      console.log(result.html);
      for (const png of result.pngs) console.log(png);
      if (opts.open) openInBrowser(result.html);
    });
}
