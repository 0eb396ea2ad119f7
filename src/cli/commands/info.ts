import type { Command } from 'commander';
import { initBackend, runtimeInfo } from '../../runtime/backend.js';
import { tlHome } from '../../util/paths.js';
import { engineInfo } from '../../runtime/engine.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('print the tensor backend, versions, threads and cache directory')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      await initBackend();
      const runtime = await runtimeInfo();
      const inference = await engineInfo();
      const info = { ...runtime, engine: inference.engine, engineVersion: inference.version, engineThreads: inference.engine === 'tfjs' ? runtime.threads : inference.threads, cacheDir: tlHome() };
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      console.log(`backend     ${info.backend}${info.wasmSimd === null ? '' : info.wasmSimd ? ' (SIMD)' : ' (no SIMD)'}`);
      console.log(`threads     ${info.threads}  (${info.threadsReason})`);
      console.log(`engine      ${info.engine} ${info.engineVersion}, ${info.engineThreads} thread${info.engineThreads === 1 ? '' : 's'}  (--engine, --threads)`);
      console.log(`tfjs        ${info.tfjs}`);
      console.log(`tfjs-node   ${info.tfjsNode ?? 'not installed (optional; wasm is used instead)'}`);
      console.log(`node        ${info.node}`);
      console.log(`cache dir   ${info.cacheDir}  (TL_HOME)`);
    });
}
