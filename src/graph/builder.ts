import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
type IAttr = onnxProto.onnx.IAttributeProto;
const AT = onnx.AttributeProto.AttributeType;

export type AttrValue = number | number[] | string;
/** Integer attributes are written as INT/INTS; pass { float: x } for FLOAT. */
export type Attrs = Record<string, AttrValue | { float: number }>;

function attribute(name: string, v: AttrValue | { float: number }): IAttr {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if (typeof v === 'object') return { name, type: AT.FLOAT, f: v.float };
  return { name, type: AT.INT, i: v };
}

/** ONNX element types, for Cast targets and value infos. */
export const DataType = onnx.TensorProto.DataType;

/** A graph input's or output's value info: a tensor of `elemType` (float by default), numeric or named dimensions. */
export function tensorInfo(name: string, dims: (number | string)[], elemType: number = DataType.FLOAT): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

const bytesOf = (a: Float32Array | Float64Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Appends ONNX nodes and constants with unique names under a prefix. */
export class GraphBuilder {
  readonly nodes: INode[] = [];
  readonly initializers: ITensor[] = [];
  private n = 0;

  constructor(private readonly prefix: string, readonly opset: number) {}

  private fresh(hint: string): string {
    return `${this.prefix}${hint}_${this.n++}`;
  }

  floats(values: number[] | Float32Array, dims: number[], hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: bytesOf(Float32Array.from(values)) });
    return name;
  }

  /** float64 constants, for statistics that float32 accumulates too coarsely (sums over a whole image). */
  doubles(values: number[], dims: number[], hint = 'const64'): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.DOUBLE, dims, rawData: bytesOf(Float64Array.from(values)) });
    return name;
  }

  scalar(value: number, hint = 'scalar'): string {
    return this.floats([value], [], hint);
  }

  ints(values: number[], hint = 'ints'): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], rawData: bytesOf(BigInt64Array.from(values.map(BigInt))) });
    return name;
  }

  op(opType: string, inputs: string[], attrs: Attrs = {}, output?: string): string {
    return this.emit(opType, inputs, [output ?? this.fresh(opType.toLowerCase())], attrs)[0];
  }

  /** For operators with several outputs (TopK: values, indices). */
  opMulti(opType: string, inputs: string[], count: number, attrs: Attrs = {}): string[] {
    const outs = Array.from({ length: count }, () => this.fresh(opType.toLowerCase()));
    return this.emit(opType, inputs, outs, attrs);
  }

  private emit(opType: string, inputs: string[], outputs: string[], attrs: Attrs): string[] {
    this.nodes.push({
      opType,
      name: this.fresh(`n_${opType}`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** ReduceMax/ReduceMean/ReduceSumSquare take axes as an attribute before opset 18 and as an input from 18 on. */
  reduce(opType: 'ReduceMax' | 'ReduceMean' | 'ReduceSum' | 'ReduceSumSquare', x: string, axes: number[], keepdims: 0 | 1, output?: string): string {
    const asInput = opType === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    return asInput
      ? this.op(opType, [x, this.ints(axes, 'axes')], { keepdims }, output)
      : this.op(opType, [x], { axes, keepdims }, output);
  }
}
