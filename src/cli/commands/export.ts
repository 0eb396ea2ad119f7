import type { Command } from 'commander';
import { exportRunOnnx } from '../../artifacts/onnx-export.js';
import { TlError } from '../../util/errors.js';

export function register(program: Command): void {
  program
    .command('export')
    .description('write a run\'s model as ONNX (opset 13, NHWC float32 input) and record it in run.json')
    .argument('<run>', 'run directory written by tl train, tl finetune or tl custom train')
    .requiredOption('--format <format>', 'onnx')
    .option('--out <file>', 'where to write it (default: RUN/model.onnx); an existing file is refused')
    .option('--with-preprocessing', 'bake the run\'s preprocessing into the graph, so it takes raw 0..255 RGB pixels')
    .action(async (runDir: string, flags: { format: string; out?: string; withPreprocessing?: boolean }) => {
      if (flags.format !== 'onnx') throw new TlError(`--format ${flags.format} is not supported; use --format onnx`);
      const { file, bytes } = await exportRunOnnx(runDir, { out: flags.out, withPreprocessing: flags.withPreprocessing });
      console.log(`wrote ${file} (${(bytes / 1e6).toFixed(1)} MB)`);
    });
}
