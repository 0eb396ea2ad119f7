import { promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { shared, tempDir } from './helpers.js';

/** The 5-class flower photos (real data), read from ../shared. */
export const flowers = (split: 'train' | 'test') => shared('datasets', 'oxford-flowers-5', split);
export const mobilenet025 = () => shared('backbones', 'mobilenet_v1_0.25_224');
export const FLOWER_CLASSES = ['bluebell', 'daisy', 'pansy', 'sunflower', 'tigerlily'];

/** The first `perClass` images (sorted names) of each class of a flowers split. */
export function flowerFiles(split: 'train' | 'test', perClass: number, skip = 0): { label: string; file: string }[] {
  return FLOWER_CLASSES.flatMap((label) =>
    readdirSync(path.join(flowers(split), label))
      .sort()
      .slice(skip, skip + perClass)
      .map((name) => ({ label, file: path.join(flowers(split), label, name) })),
  );
}

/** A temporary class-per-folder copy of a few flower images: small, fast tests on real photos. */
export async function flowerSubset(split: 'train' | 'test', perClass: number, skip = 0, dir = tempDir('tl-flowers-')): Promise<string> {
  for (const { label, file } of flowerFiles(split, perClass, skip)) {
    await fs.mkdir(path.join(dir, label), { recursive: true });
    await fs.copyFile(file, path.join(dir, label, path.basename(file)));
  }
  return dir;
}
