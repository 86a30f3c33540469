import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;

export interface TensorInfo {
  name: string;
  /** Dimension sizes; null for symbolic dimensions (e.g. the batch). */
  dims: (number | null)[];
  elemType: number;
}

export interface GraphIO {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  opset: number;
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

function info(v: onnxProto.onnx.IValueInfoProto): TensorInfo {
  const t = v.type?.tensorType;
  return {
    name: v.name ?? '',
    elemType: t?.elemType ?? 0,
    dims: (t?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null)),
  };
}

/** Graph inputs (initializers excluded), outputs and the default-domain opset. */
export function graphIO(model: ModelProto): GraphIO {
  const graph = model.graph;
  if (!graph) throw new Error('the file holds no graph');
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return {
    inputs: (graph.input ?? []).filter((v) => !inits.has(v.name ?? '')).map(info),
    outputs: (graph.output ?? []).map(info),
    opset: Number(opset?.version ?? 0),
  };
}
