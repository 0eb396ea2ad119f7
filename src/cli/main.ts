import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../util/paths.js';
import { errorLine, TlError } from '../util/errors.js';
import { jsonLogSink } from '../runtime/progress.js';
import { currentContext, withContext, type TlContext } from '../runtime/context.js';
import { register as registerInfo } from './commands/info.js';
import { register as registerReport } from './commands/report.js';
import { register as registerSweep } from './commands/sweep.js';
import { register as registerCustom } from './commands/custom.js';
import { register as registerDatasets } from './commands/datasets.js';
import { register as registerBackbones } from './commands/backbones.js';
import { register as registerTrain } from './commands/train.js';
import { register as registerPredict } from './commands/predict.js';
import { register as registerEvaluate } from './commands/evaluate.js';
import { register as registerFinetune } from './commands/finetune.js';
import { register as registerClassify } from './commands/classify.js';
import { register as registerExport } from './commands/export.js';
import { register as registerLrFind } from './commands/lr-find.js';

/** Each command module adds its subcommand; the library does the work. */
const COMMANDS: ((program: Command) => void)[] = [registerInfo, registerReport, registerSweep, registerCustom, registerDatasets, registerBackbones, registerTrain, registerPredict, registerEvaluate, registerFinetune, registerClassify, registerExport, registerLrFind];

export function buildProgram(): Command {
  const program = new Command('tl')
    .description('Transfer learning and custom image classifiers for Node.js')
    .option('--backend <name>', 'tensor backend: tensorflow (tfjs-node), wasm or cpu; default: the fastest that loads (env TL_BACKEND)')
    .option('--engine <name>', 'inference engine of frozen bases, predict and evaluate: onnxruntime or tfjs; default: onnxruntime where it loads (env TL_ENGINE)')
    .option('--threads <n>', 'threads of the wasm backend and the onnxruntime engine; default: the available cores (env TL_THREADS)')
    .option('--log-json <file>', 'append one JSON object per epoch/batch event to FILE')
    .version(packageVersion(), '--version', 'print the version of tl')
    .exitOverride();
  // The global options become the context of the command's operations: no environment is changed.
  program.hook('preAction', (cmd) => {
    const opts = cmd.optsWithGlobals() as { backend?: string; engine?: string; threads?: string; logJson?: string };
    Object.assign(currentContext(), {
      ...(opts.backend ? { backend: opts.backend } : {}),
      ...(opts.engine ? { engine: opts.engine } : {}),
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.logJson ? { onEvent: jsonLogSink(opts.logJson) } : {}),
    });
  });
  for (const register of COMMANDS) register(program);
  pointToHelpAfterErrors(program);
  return program;
}

/** The version in package.json, read where the package is installed. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * A usage error is one line and where to read more, not the whole help: commander's message,
 * then `see \`tl CMD --help\``, for every (sub)command.
 */
function pointToHelpAfterErrors(command: Command, names: string[] = []): void {
  const path = [...names, command.name()];
  command.showHelpAfterError(`see \`${path.join(' ')} --help\``);
  for (const sub of command.commands) pointToHelpAfterErrors(sub, path);
}

/**
 * The wasm backend's heap holds at most 4 GB; past it, kernels fail with a bare "memory access out
 * of bounds", a failed grow or an emscripten "Aborted()" (a failed allocation), none of which says
 * what to change.
 */
function isWasmOutOfMemory(err: unknown): boolean {
  return err instanceof Error && /memory access out of bounds|Maximum memory size exceeded|WebAssembly\.Memory|Out of memory|^Aborted\(\)/i.test(err.message);
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  const terminal: TlContext = { onMessage: (line) => process.stderr.write(line + '\n'), progressStream: process.stderr };
  try {
    await withContext(terminal, () => program.parseAsync(argv));
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof TlError) {
      console.error(`tl: ${err.message}`);
      process.exitCode = err.exitCode;
      return;
    }
    if (isWasmOutOfMemory(err)) {
      console.error(`tl: the wasm backend failed (${errorLine(err)}), most likely out of memory (its heap holds at most 4 GB): use a smaller --batch-size, --size or --scales`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}
