import onnxProto from 'onnx-proto';

/**
 * A small builder over the generated onnx.proto classes of `onnx-proto` (protobufjs): nodes,
 * initializers and the model wrapper. Every tensor name is unique within the graph.
 */
const { onnx } = onnxProto;

/** Opset 13: Softmax over one axis, Pad/Clip with tensor inputs; what ONNX Runtime 1.x and onnx 1.12 both check. */
export const OPSET = 13;
/** The IR version that goes with opset 13 (onnx 1.8+). */
const IR_VERSION = 7;

export type AttributeValue = { int: number } | { ints: number[] } | { float: number } | { floats: number[] } | { string: string };

export const int = (v: number): AttributeValue => ({ int: v });
export const ints = (v: number[]): AttributeValue => ({ ints: v });
export const float = (v: number): AttributeValue => ({ float: v });

const Type = onnx.AttributeProto.AttributeType;

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  if ('int' in value) return { name, type: Type.INT, i: value.int };
  if ('ints' in value) return { name, type: Type.INTS, ints: value.ints };
  if ('float' in value) return { name, type: Type.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: Type.FLOATS, floats: value.floats };
  return { name, type: Type.STRING, s: new TextEncoder().encode(value.string) };
}

/** A dimension: a number, or a name for one that varies (the batch). */
export type Dim = number | string;

function valueInfo(name: string, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Raw little-endian bytes of a typed array (x86 and ARM hosts are little-endian, as ONNX's raw_data is). */
function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly names = new Set<string>();

  /** `base`, or `base_1`, `base_2`... whichever is still free. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** A float32 initializer; returns its name. */
  floats(base: string, data: Float32Array, dims: readonly number[]): string {
    const name = this.unique(base);
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytesOf(data) });
    return name;
  }

  /** An int64 initializer (shapes, pads, axes); returns its name. */
  int64s(base: string, values: readonly number[]): string {
    const name = this.unique(base);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: bytesOf(data) });
    return name;
  }

  /** One node with one output, named after `base`; returns the output's name. */
  node(opType: string, inputs: readonly string[], base: string, attributes: Record<string, AttributeValue> = {}): string {
    return this.nodeTo(opType, inputs, this.unique(base), attributes);
  }

  /** One node writing the `declare`d name `output`. */
  nodeTo(opType: string, inputs: readonly string[], output: string, attributes: Record<string, AttributeValue> = {}): string {
    this.nodes.push({
      opType,
      name: output,
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Reserve `name` (the graph's input and output), before any other name is made. */
  declare(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx graph: name ${name} is taken`);
    this.names.add(name);
    return name;
  }

  /** The serialized ModelProto. */
  encode(opts: { name: string; input: { name: string; dims: Dim[] }; output: { name: string; dims: Dim[] }; producerVersion: string; docString?: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'tl',
      producerVersion: opts.producerVersion,
      docString: opts.docString ?? '',
      graph: {
        name: opts.name,
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(opts.input.name, opts.input.dims)],
        output: [valueInfo(opts.output.name, opts.output.dims)],
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
