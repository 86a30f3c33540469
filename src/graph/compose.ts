import onnxProto from 'onnx-proto';
import type { Bundle } from '../bundle/load.js';
import { DataType, GraphBuilder, tensorInfo } from './builder.js';
import { buildHead, OUTPUT_MAP, OUTPUT_SCORE, pathOutput } from './head.js';
import { buildPreprocess, PIXELS_INPUT } from './preprocess.js';

const { onnx } = onnxProto;
type IGraph = onnxProto.onnx.IGraphProto;
type IModel = onnxProto.onnx.IModelProto;
const AT = onnx.AttributeProto.AttributeType;

function defaultOpset(model: IModel): number {
  return Number((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
}

/** Copies a graph's nodes, initializers and value infos with every tensor name prefixed, except the shared input. */
function prefixed(graph: IGraph, prefix: string, input: string) {
  const rename = (n: string | null | undefined) => (!n ? '' : n === input ? input : prefix + n);
  for (const node of graph.node ?? []) {
    if ((node.attribute ?? []).some((a) => a.type === AT.GRAPH || a.type === AT.GRAPHS || a.g || (a.graphs?.length ?? 0) > 0)) {
      throw new Error(`node ${node.name} (${node.opType}) has a subgraph; control flow is not supported in bundles`);
    }
  }
  return {
    nodes: (graph.node ?? []).map((n) => ({ ...n, name: prefix + (n.name ?? ''), input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) })),
    initializers: (graph.initializer ?? []).map((t) => ({ ...t, name: rename(t.name) })),
    valueInfo: (graph.valueInfo ?? []).map((v) => ({ ...v, name: rename(v.name) })),
  };
}

/**
 * One graph for one run per batch: 8-bit pixels in, the preprocessing makes the model's float input, teacher and
 * student share it, the discrepancy head turns their features into maps and scores, and only those leave the
 * graph (the Node binding has no device tensors, so anything else would cross PCIe on a GPU node).
 */
export function composeBundle(bundle: Bundle): Uint8Array {
  const { manifest: m, teacher, student } = bundle;
  const opset = defaultOpset(teacher);
  if (opset !== defaultOpset(student)) {
    throw new Error(`teacher opset ${opset} and student opset ${defaultOpset(student)} differ; export both with the same opset`);
  }
  if (opset < 13) throw new Error(`opset ${opset} is too old; 13 or newer is needed`);
  const input = m.input.name;
  const t = prefixed(teacher.graph!, 'teacher/', input);
  const s = prefixed(student.graph!, 'student/', input);
  const pre = new GraphBuilder('pre/', opset);
  buildPreprocess(pre, m.input, PIXELS_INPUT, input);
  const g = new GraphBuilder('head/', opset);
  const outputs = buildHead(g, m, { teacher: (n) => `teacher/${n}`, student: (n) => `student/${n}` });

  const studentOut = new Map((student.graph!.output ?? []).map((o) => [o.name, o]));
  const spatial = (name: string) => {
    const dims = studentOut.get(name)?.type?.tensorType?.shape?.dim ?? [];
    return [dims[2], dims[3]].map((d, i) => (d?.dimValue ? Number(d.dimValue) : `h${i}_${name}`));
  };
  const graphOutputs = [
    tensorInfo(OUTPUT_MAP, ['batch', 1, m.input.height, m.input.width]),
    tensorInfo(OUTPUT_SCORE, ['batch']),
    ...m.student.outputs.map((o) => tensorInfo(pathOutput(o.name), ['batch', 1, ...spatial(o.name)])),
  ];
  if (graphOutputs.length !== outputs.length) throw new Error('head outputs and graph outputs disagree');

  const domains = new Map<string, number>();
  for (const o of [...(teacher.opsetImport ?? []), ...(student.opsetImport ?? [])]) {
    const d = o.domain ?? '';
    domains.set(d, Math.max(domains.get(d) ?? 0, Number(o.version ?? 0)));
  }
  const model: IModel = {
    irVersion: Math.max(Number(teacher.irVersion ?? 7), Number(student.irVersion ?? 7)),
    producerName: 'mixdistill',
    producerVersion: '1',
    opsetImport: [...domains].map(([domain, version]) => ({ domain, version })),
    graph: {
      name: `${m.name}-${m.version}`,
      input: [tensorInfo(PIXELS_INPUT, ['batch', m.input.height, m.input.width, 3], DataType.UINT8)],
      output: graphOutputs,
      node: [...pre.nodes, ...t.nodes, ...s.nodes, ...g.nodes],
      initializer: [...pre.initializers, ...t.initializers, ...s.initializers, ...g.initializers],
      valueInfo: [...t.valueInfo, ...s.valueInfo],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
