import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { writeReport } from '../../reporting/report.js';
import { logEvent } from '../../runtime/progress.js';

/** An opener still running after this long has handed the page to a browser that stays open. */
const OPENER_PATIENCE_MS = 10_000;

/**
 * Hands the page to the desktop's opener and waits for its verdict: why no browser opened it, or
 * undefined. (Windows' explorer exits 1 even when it opened the file, so only a failed start counts there.)
 */
function openInBrowser(file: string): Promise<string | undefined> {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  return new Promise((resolve) => {
    const child = spawn(opener, [file], { detached: true, stdio: 'ignore' });
    const timer = setTimeout(() => {
      child.unref();
      resolve(undefined);
    }, OPENER_PATIENCE_MS);
    const settle = (reason: string | undefined) => {
      clearTimeout(timer);
      resolve(reason);
    };
    child.on('error', (err: NodeJS.ErrnoException) => settle(err.code === 'ENOENT' ? `${opener} is not installed` : `${opener} could not start (${err.code ?? err.message})`));
    child.on('exit', (code) => settle(code === 0 || process.platform === 'win32' ? undefined : `${opener} exited with status ${code ?? 'killed'}`));
  });
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
      const failure = opts.open ? await openInBrowser(result.html) : undefined;
      if (failure) {
        console.error(`tl: no browser opened the report: ${failure}; open ${result.html} yourself`);
        process.exitCode = 1;
      }
    });
}
