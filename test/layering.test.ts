/**
 * The source tree reads like the pipeline: each folder under src/ imports only from the folders
 * before it, and no module imports itself back through others (type imports included).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers.js';

/** Bottom to top. `library.ts` and `index.ts` (the public entry points) may import anything. */
const LAYERS = ['util', 'runtime', 'data', 'models', 'backbones', 'artifacts', 'training', 'reporting', 'sweep', 'cli'];
const src = path.join(repoRoot, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : /\.c?ts$/.test(p) ? [p] : [];
  });
}

/** Every relative import and re-export of `file`, static or dynamic, type-only or not. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g), ...text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return specifiers.map((s) => path.resolve(path.dirname(file), s.replace(/\.(c?)js$/, '.$1ts')));
}

const folderOf = (file: string) => path.relative(src, file).split(path.sep)[0]!;
const graph = new Map(sourceFiles(src).map((f) => [f, importsOf(f)]));

test('each folder of src/ imports only from the folders below it in the pipeline', () => {
  const upward: string[] = [];
  for (const [file, deps] of graph) {
    const from = LAYERS.indexOf(folderOf(file));
    if (from < 0) continue; // the entry points
    for (const dep of deps) {
      const to = LAYERS.indexOf(folderOf(dep));
      assert.ok(to >= 0 || !graph.has(dep), `${path.relative(src, file)} imports the entry point ${path.relative(src, dep)}`);
      if (to > from) upward.push(`${path.relative(src, file)} -> ${path.relative(src, dep)}`);
    }
  }
  assert.deepEqual(upward, []);
  assert.deepEqual([...new Set([...graph.keys()].map(folderOf))].filter((f) => !f.endsWith('.ts') && !LAYERS.includes(f)), [], 'a folder outside the layer list');
});

test('no module imports itself back through other modules', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (!graph.has(dep)) continue;
      if (state.get(dep) === 'open') cycles.push(stack.slice(stack.indexOf(dep)).map((f) => path.relative(src, f)).join(' -> '));
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  assert.deepEqual(cycles, []);
});
