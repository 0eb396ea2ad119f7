import type { Command } from 'commander';
import { CLASSIFY_OPTIONS, classifyImageNet, expandImagePaths, loadImageNetClassifier, PREDICT_OPTIONS } from '../../training/predict.js';
import { printPredictions } from './predict.js';
import { commanderOption } from '../options.js';

export function register(program: Command): void {
  program
    .command('classify')
    .description('ImageNet classes of images with a pretrained MobileNet (@tensorflow-models/mobilenet)')
    .argument('<images...>', 'image files or folders of images')
    .addOption(commanderOption('topK', PREDICT_OPTIONS.topK))
    .option('--model <dir|url>', 'tfjs graph model folder (offline) or URL; default: the package\'s hosted MobileNet v1 0.25')
    .addOption(commanderOption('inputRange', CLASSIFY_OPTIONS.inputRange))
    .option('--json', 'machine-readable output')
    .action(async (inputs: string[], flags: { topK: number; model?: string; inputRange: [number, number]; json?: boolean }) => {
      const files = await expandImagePaths(inputs);
      const classifier = await loadImageNetClassifier({ model: flags.model, inputRange: flags.inputRange });
      printPredictions(await classifyImageNet(classifier, files, { topK: flags.topK }), flags.json === true);
    });
}
