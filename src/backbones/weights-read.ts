import tf from '../runtime/tf.cjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readModelArtifacts } from '../models/layers-io.js';
import { nonRegularFileReason } from '../util/file-kinds.js';
import { fileError, TlError } from '../util/errors.js';
import { sha256, sha256File } from '../util/hash.js';
import type { Dataset as H5Dataset, File as H5File, Group as H5Group } from 'h5wasm/node';

export interface StoredWeight {
  shape: number[];
  values: Float32Array;
}

/**
 * The weights of a file, addressed the way Keras addresses them: layer name, then weight name
 * (`kernel`, `depthwise_kernel`, `gamma`, ...). Positions in the file do not matter.
 */
export interface WeightsFile {
  /** The file or folder the user pointed at, for error messages. */
  source: string;
  format: 'keras-h5' | 'tfjs-layers';
  layers: Map<string, Map<string, StoredWeight>>;
  /** sha256 of the .h5 file, or of the concatenated tfjs weight shards in manifest order. */
  sha256: string;
  /**
   * Every layer the file's model had, weightless ones included (h5 `layer_names`, tfjs topology),
   * when the file records them: it tells which version of an architecture the weights belong to.
   */
  layerNames?: string[];
}

/** `conv1/kernel:0` or `model/conv1/kernel` -> `kernel`. */
export function weightBaseName(name: string): string {
  return name.split('/').pop()!.replace(/:\d+$/, '');
}

function addWeight(layers: WeightsFile['layers'], layer: string, weight: string, stored: StoredWeight): void {
  let entry = layers.get(layer);
  if (!entry) layers.set(layer, (entry = new Map()));
  entry.set(weight, stored);
}

/** A weights file or folder and the format it holds, as found on disk. */
export interface WeightsFileRef {
  path: string;
  format: WeightsFile['format'];
}

const WEIGHTS_PATH_HINT = 'pass a Keras .h5 weights file, a TensorFlow.js model folder or model.json';

/** What a path to a .h5 file, a tfjs model folder or its model.json holds; one line when it is none of them. */
export async function locateWeightsFile(file: string): Promise<WeightsFileRef> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    throw fileError(file, 'not found', WEIGHTS_PATH_HINT);
  }
  if (stat.isDirectory()) return { path: file, format: 'tfjs-layers' };
  const notRegular = nonRegularFileReason(stat);
  if (notRegular) throw fileError(file, `is ${notRegular}`, WEIGHTS_PATH_HINT);
  return { path: file, format: file.endsWith('.json') ? 'tfjs-layers' : 'keras-h5' };
}

/** The weights at a path (a .h5 file, a tfjs model folder or its model.json), or at a located file. */
export async function readWeightsFile(file: string | WeightsFileRef): Promise<WeightsFile> {
  const ref = typeof file === 'string' ? await locateWeightsFile(file) : file;
  if (ref.format === 'keras-h5') return readKerasH5Weights(ref.path);
  return readTfjsWeights(ref.path.endsWith('.json') ? ref.path : path.join(ref.path, 'model.json'), ref.path);
}

/** Graph models (tfjs-converter from a SavedModel/TF-Hub) hold a GraphDef: a `node` list. */
function isGraphModel(topology: unknown): boolean {
  return typeof topology === 'object' && topology !== null && Array.isArray((topology as { node?: unknown }).node);
}

async function readTfjsWeights(modelJson: string, source: string): Promise<WeightsFile> {
  const artifacts = await readModelArtifacts(modelJson);
  if (isGraphModel(artifacts.modelTopology)) {
    throw fileError(source, 'is a TensorFlow.js graph model, whose weights are not named by Keras layer', 'use a layers model (model.json with a Keras topology) or a Keras .h5');
  }
  const specs = artifacts.weightSpecs ?? [];
  const data = artifacts.weightData as ArrayBuffer;
  const named = tf.io.decodeWeights(data, specs);
  const layers: WeightsFile['layers'] = new Map();
  for (const spec of specs) {
    const tensor = named[spec.name]!;
    // `<layer>/<weight>`, possibly under enclosing model scopes: the layer is the segment before the weight.
    const parts = spec.name.split('/');
    if (parts.length < 2) throw fileError(modelJson, `weight "${spec.name}" is not named <layer>/<weight>`, 'save the model with tfjs or the tfjs converter');
    addWeight(layers, parts[parts.length - 2]!, weightBaseName(spec.name), {
      shape: tensor.shape,
      values: tensor.dtype === 'float32' ? (tensor.dataSync() as Float32Array) : Float32Array.from(tensor.dataSync()),
    });
    tensor.dispose();
  }
  return { source, format: 'tfjs-layers', layers, sha256: sha256(new Uint8Array(data)), layerNames: topologyLayerNames(artifacts.modelTopology) };
}

/** Layer names of a Keras functional topology (`model_config` wrapper or bare), nested models included. */
function topologyLayerNames(topology: unknown): string[] | undefined {
  type Config = { class_name?: string; config?: { name?: string; layers?: Config[] }; model_config?: Config };
  const root = topology as Config | undefined;
  const model = root?.model_config ?? root;
  if (!model?.config?.layers) return undefined;
  const names: string[] = [];
  const visit = (layers: Config[]) => {
    for (const layer of layers) {
      if (layer.config?.name) names.push(layer.config.name);
      if (layer.config?.layers) visit(layer.config.layers);
    }
  };
  visit(model.config.layers);
  return names;
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** h5wasm does not fail on opening a non-HDF5 file, only later and obscurely: check first. */
async function hasHdf5Signature(file: string): Promise<boolean> {
  const handle = await fs.open(file, 'r');
  try {
    // The superblock sits at 0 or, after a user block, at 512, 1024, 2048, ...
    for (let offset = 0; offset <= 65536; offset = offset === 0 ? 512 : offset * 2) {
      const head = Buffer.alloc(8);
      const { bytesRead } = await handle.read(head, 0, 8, offset);
      if (bytesRead < 8) return false;
      if (head.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    await handle.close();
  }
}

type H5Module = typeof import('h5wasm/node').default;

/** The emscripten module under h5wasm: it switches how HDF5 reports errors. */
interface H5ErrorSwitch {
  activate_throwing_error_handler(): number;
  deactivate_throwing_error_handler(): number;
}

let h5Ready: Promise<{ h5wasm: H5Module; errors: H5ErrorSwitch }> | undefined;

async function loadH5(): Promise<{ h5wasm: H5Module; errors: H5ErrorSwitch }> {
  h5Ready ??= (async () => {
    const h5wasm = (await import('h5wasm/node')).default;
    const errors = (await h5wasm.ready) as unknown as H5ErrorSwitch;
    return { h5wasm, errors };
  })();
  return h5Ready;
}

/** h5wasm, initialised once (its wasm module loads asynchronously). */
export async function h5(): Promise<H5Module> {
  return (await loadH5()).h5wasm;
}

/** The innermost entry of an HDF5 error stack (`#006: ... in H5F__super_read(): truncated file: eof = ...`). */
function hdf5Reason(message: string): string {
  const frames = message.split('\n').filter((line) => /^\s*#\d+:/.test(line));
  const innermost = frames.at(-1)?.replace(/^.*?\(\): /, '').trim();
  return innermost || message.split('\n')[0]!.trim();
}

/**
 * Run `read` with HDF5 errors thrown instead of printed: HDF5 writes its whole error stack
 * (dozens of `HDF5-DIAG` lines) to stderr, and h5wasm then fails with a message naming no file.
 * Any failure becomes one line naming `file`.
 */
async function readingH5<T>(file: string, read: (h5wasm: H5Module) => T): Promise<T> {
  const { h5wasm, errors } = await loadH5();
  errors.activate_throwing_error_handler();
  try {
    return read(h5wasm);
  } catch (err) {
    if (err instanceof TlError) throw err;
    const reason = hdf5Reason(err instanceof Error ? err.message : String(err));
    throw fileError(file, `cannot be read as HDF5 (${reason})`, 'the file is truncated or damaged; download or copy it again');
  } finally {
    errors.deactivate_throwing_error_handler();
  }
}

function stringListAttr(group: H5Group, name: string): string[] {
  const attr = group.attrs[name];
  if (!attr) return [];
  const value = attr.value as unknown;
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.map(String);
  return []; // an empty numeric attr: a layer without weights
}

/**
 * A Keras `save_weights` HDF5 file (keras.applications layout): root attr `layer_names`, one group
 * per layer with attr `weight_names`, datasets at `<layer>/<weight name>`. A whole-model .h5
 * (`model.save`) keeps the same layout under `model_weights`.
 */
async function readKerasH5Weights(file: string): Promise<WeightsFile> {
  if (!(await hasHdf5Signature(file))) {
    throw fileError(file, 'is not an HDF5 file', 'pass a Keras .h5 weights file or a TensorFlow.js model folder');
  }
  const { layers, layerNames } = await readingH5(file, (h5wasm) => {
    const f: H5File = new h5wasm.File(path.resolve(file), 'r');
    try {
      const root = (f.attrs['layer_names'] ? f : f.get('model_weights')) as H5Group | null;
      if (!root || !root.attrs['layer_names']) {
        throw fileError(file, 'has no Keras layer_names attribute', 'save it with Keras model.save_weights(...h5) (Keras 3 .weights.h5 files are not supported)');
      }
      const layers: WeightsFile['layers'] = new Map();
      const layerNames = stringListAttr(root, 'layer_names');
      for (const layerName of layerNames) {
        const group = root.get(layerName) as H5Group | null;
        if (!group) throw fileError(file, `layer group "${layerName}" listed in layer_names is missing`, 'the file is damaged; fetch it again');
        for (const weightName of stringListAttr(group, 'weight_names')) {
          const dataset = group.get(weightName) as H5Dataset | null;
          if (!dataset) throw fileError(file, `dataset ${layerName}/${weightName} is missing`, 'the file is damaged; fetch it again');
          const value = dataset.value as unknown;
          const values = value instanceof Float32Array ? value : Float32Array.from(value as ArrayLike<number>);
          addWeight(layers, layerName, weightBaseName(weightName), { shape: [...dataset.shape!], values });
        }
      }
      return { layers, layerNames };
    } finally {
      f.close();
    }
  });
  return { source: file, format: 'keras-h5', layers, sha256: await sha256File(file), layerNames };
}
