import { promises as fs } from 'node:fs';
import path from 'node:path';
import { exists, removeStaleTemps, renameNoReplace } from '../util/atomic.js';
import { fileError, TlError } from '../util/errors.js';
import { acquireLock, type PathLock } from '../util/lock.js';
import { requireWritableDir, writeProblem } from '../util/writable.js';
import { RUN_FILES } from './run.js';

export interface WorkspaceOptions {
  /** Continue the unfinished run in `OUT.partial` instead of refusing it. */
  resume?: boolean;
}

/**
 * Where a training command builds its run: `OUT.partial/`, locked for the life of the process,
 * renamed to `OUT` only when complete and never over anything. Everything that can make the run
 * fail at the end (an unwritable or taken --out, a leftover partial run) is checked at open, before
 * any work. A failed run keeps its partial folder only if it holds a checkpoint to resume from.
 */
export class RunWorkspace {
  private constructor(
    readonly out: string,
    readonly dir: string,
    /** True when `dir` held an unfinished run that this one continues. */
    readonly resuming: boolean,
    private readonly lock: PathLock,
  ) {}

  get checkpointDir(): string {
    return path.join(this.dir, RUN_FILES.checkpoint);
  }

  static async open(out: string, opts: WorkspaceOptions = {}): Promise<RunWorkspace> {
    const parent = path.dirname(out);
    await requireWritableDir(parent, 'choose another --out', out);
    const lock = await acquireLock(out, 'run').catch((err: unknown) => {
      throw err instanceof TlError ? err : fileError(out, writeProblem(err), 'choose another --out');
    });
    try {
      await removeStaleTemps(parent);
      if (await exists(out)) throw fileError(out, 'already exists', 'pass a new --out (runs are never overwritten)');
      const dir = `${out}.partial`;
      const unfinished = await exists(dir);
      if (unfinished && !opts.resume) throw fileError(dir, 'holds an unfinished run', `continue it with --resume, or delete ${dir} to start over`);
      if (!unfinished && opts.resume) throw fileError(dir, 'not found, so there is no unfinished run to resume', 'pass the --out of the interrupted run, or run without --resume');
      if (unfinished) await removeStaleTemps(dir);
      else await fs.mkdir(dir);
      return new RunWorkspace(out, dir, unfinished, lock);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /**
   * Run `work` in a workspace and finish it: on success the files `work` wrote into the workspace
   * become `out`; on failure the partial folder stays only when it holds a checkpoint.
   */
  static async run<T>(out: string, opts: WorkspaceOptions, work: (ws: RunWorkspace) => Promise<T>): Promise<T> {
    const ws = await RunWorkspace.open(out, opts);
    try {
      const result = await work(ws);
      await ws.commit();
      return result;
    } catch (err) {
      await ws.abandon();
      throw err;
    }
  }

  /** Drop the checkpoint and move the finished run into place. */
  private async commit(): Promise<void> {
    await fs.rm(this.checkpointDir, { recursive: true, force: true });
    await renameNoReplace(this.dir, this.out);
    await this.lock.release();
  }

  private async abandon(): Promise<void> {
    if (!(await exists(this.checkpointDir))) await fs.rm(this.dir, { recursive: true, force: true });
    await this.lock.release();
  }
}
