import { InvalidArgumentError, type Command } from 'commander';
import { classifyImageNet, expandImagePaths, loadImageNetClassifier, PREDICT_OPTIONS } from '../../training/predict.js';
import { printPredictions } from './predict.js';
import { commanderOption } from '../options.js';

function parseRange(value: string): [number, number] {
  const parts = value.split(',').map(Number);
  if (parts.length !== 2 || parts.some((v) => !Number.isFinite(v)) || parts[0]! >= parts[1]!) {
    throw new InvalidArgumentError('use MIN,MAX, e.g. 0,1 or -1,1');
  }
  return [parts[0]!, parts[1]!];
}

export function register(program: Command): void {
  program
    .command('classify')
    .description('ImageNet classes of images with a pretrained MobileNet (@tensorflow-models/mobilenet)')
    .argument('<images...>', 'image files or folders of images')
    .addOption(commanderOption('topK', PREDICT_OPTIONS.topK))
    .option('--model <dir|url>', 'tfjs graph model folder (offline) or URL; default: the package\'s hosted MobileNet v1 0.25')
    .option('--input-range <min,max>', 'pixel range the --model expects', parseRange, [0, 1])
    .option('--json', 'machine-readable output')
    .action(async (inputs: string[], flags: { topK: number; model?: string; inputRange: [number, number]; json?: boolean }) => {
      const files = await expandImagePaths(inputs);
      const classifier = await loadImageNetClassifier({ model: flags.model, inputRange: flags.inputRange });
      printPredictions(await classifyImageNet(classifier, files, { topK: flags.topK }), flags.json === true);
    });
}
