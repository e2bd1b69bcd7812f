import { ProtoWriter } from './protobuf.js';

/** Field numbers and enums of onnx.proto that the built-in models use. */
const FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;
const ATTRIBUTE_FLOAT = 1;
const IR_VERSION = 8;

type Dimension = number | string;

/** A float32 tensor stored in the model (weights, biases, constants). */
export interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly values: Float32Array;
}

type AttributeValue = number | readonly number[] | { readonly float: number };

export interface Node {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

/** A graph input or output: a float32 tensor whose dimensions are sizes or symbolic names (a dynamic batch). */
interface TensorInfo {
  readonly name: string;
  readonly shape: readonly Dimension[];
}

export interface ModelSpec {
  readonly name: string;
  readonly doc: string;
  readonly opset: number;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly initializers: readonly Initializer[];
  readonly nodes: readonly Node[];
}

function attribute(name: string, value: AttributeValue): ProtoWriter {
  const proto = new ProtoWriter().string(1, name);
  if (typeof value === 'number') return proto.varint(20, ATTRIBUTE_INT).varint(3, value);
  if ('float' in value) return proto.varint(20, ATTRIBUTE_FLOAT).float(2, value.float);
  proto.varint(20, ATTRIBUTE_INTS);
  for (const item of value as readonly number[]) proto.varint(8, item);
  return proto;
}

function node(spec: Node, index: number): ProtoWriter {
  const proto = new ProtoWriter();
  for (const input of spec.inputs) proto.string(1, input);
  for (const output of spec.outputs) proto.string(2, output);
  proto.string(3, `${spec.op.toLowerCase()}_${index}`).string(4, spec.op);
  for (const [name, value] of Object.entries(spec.attributes ?? {})) proto.message(5, attribute(name, value));
  return proto;
}

function tensor(spec: Initializer): ProtoWriter {
  const proto = new ProtoWriter();
  for (const dim of spec.dims) proto.varint(1, dim);
  proto.varint(2, FLOAT).string(8, spec.name);
  // raw_data is little-endian: copy through a DataView rather than trust the machine's order.
  const raw = new Uint8Array(spec.values.length * 4);
  const view = new DataView(raw.buffer);
  spec.values.forEach((value, i) => view.setFloat32(i * 4, value, true));
  return proto.bytes(9, raw);
}

function valueInfo(spec: TensorInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of spec.shape) {
    const dimension = new ProtoWriter();
    if (typeof dim === 'number') dimension.varint(1, dim);
    else dimension.string(2, dim);
    shape.message(1, dimension);
  }
  const tensorType = new ProtoWriter().varint(1, FLOAT).message(2, shape);
  return new ProtoWriter().string(1, spec.name).message(2, new ProtoWriter().message(1, tensorType));
}

/** Serializes a model to ONNX protobuf bytes, ready for InferenceSession.create(). */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const graph = new ProtoWriter();
  spec.nodes.forEach((item, index) => graph.message(1, node(item, index)));
  graph.string(2, spec.name);
  for (const item of spec.initializers) graph.message(5, tensor(item));
  graph.string(10, spec.doc);
  for (const input of spec.inputs) graph.message(11, valueInfo(input));
  for (const output of spec.outputs) graph.message(12, valueInfo(output));
  return new ProtoWriter()
    .varint(1, IR_VERSION)
    .string(2, 'imgpush')
    .string(6, spec.doc)
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').varint(2, spec.opset))
    .finish();
}
