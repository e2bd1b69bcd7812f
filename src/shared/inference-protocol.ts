import { ImgpushError } from './errors.js';

/*
 * The Open Inference Protocol (KServe v2, Triton) on the wire, as far as
 * imgpush speaks it: tensors in JSON, and the binary tensor data extension,
 * where the body is a JSON header of `Inference-Header-Content-Length`
 * bytes followed by the bytes of each binary tensor in the order the
 * header lists them. Pure functions on Buffers, for the server and a client.
 */

/** The header giving the length of the JSON part of a binary-extension body. */
export const HEADER_LENGTH = 'inference-header-content-length';

/** A body that breaks the protocol: the message says where. */
export class InferenceProtocolError extends ImgpushError {
  constructor(message: string) {
    super('IMGPUSH_BAD_V2_BODY', message);
  }
}

/** An output tensor as a v2 answer gives it; `data` is filled in by decodeInferenceResponse when it came as binary. */
export interface ResponseTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly parameters?: Readonly<Record<string, unknown>>;
  readonly data?: ReadonlyArray<string | number | boolean>;
}

export interface InferenceResponse {
  readonly model_name: string;
  readonly model_version?: string;
  readonly id?: string;
  readonly parameters?: Readonly<Record<string, unknown>>;
  readonly outputs: readonly ResponseTensor[];
}

const LENGTH_PREFIX = 4;

/**
 * BYTES elements in the binary layout: each one a 4-byte little-endian
 * length, then its bytes. Strings are written as UTF-8.
 *
 * @example encodeBytesTensor([Buffer.from('ab')]) // <02 00 00 00 61 62>
 */
export function encodeBytesTensor(elements: ReadonlyArray<Uint8Array | string>): Buffer {
  const buffers = elements.map((element) => (typeof element === 'string' ? Buffer.from(element) : element));
  const out = Buffer.allocUnsafe(buffers.reduce((size, element) => size + LENGTH_PREFIX + element.length, 0));
  let at = 0;
  for (const element of buffers) {
    at = out.writeUInt32LE(element.length, at);
    out.set(element, at);
    at += element.length;
  }
  return out;
}

/** The elements of a BYTES tensor in binary layout, as views into `data`; `what` names the tensor in errors. */
export function decodeBytesTensor(data: Buffer, what: string): Buffer[] {
  const elements: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const left = data.length - at;
    if (left < LENGTH_PREFIX) throw new InferenceProtocolError(`the binary data of ${what} ends inside the 4-byte length of element ${elements.length} (${left} bytes left)`);
    const length = data.readUInt32LE(at);
    at += LENGTH_PREFIX;
    if (length > data.length - at) {
      throw new InferenceProtocolError(`the binary data of ${what} ends inside element ${elements.length}: its length says ${length} bytes, ${data.length - at} are left`);
    }
    elements.push(data.subarray(at, at + length));
    at += length;
  }
  return elements;
}

/** FP32 values in the binary layout: 4 bytes each, little-endian. */
export function encodeFp32Tensor(values: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(values.length * 4);
  values.forEach((value, i) => out.writeFloatLE(value, i * 4));
  return out;
}

/** Fixed-size datatypes: bytes per element and how to read one. INT64 and UINT64 come back as numbers (exact up to 2^53). */
const FIXED_SIZE: Readonly<Record<string, { readonly size: number; readonly read: (data: Buffer, at: number) => number | boolean }>> = {
  BOOL: { size: 1, read: (data, at) => data[at] !== 0 },
  UINT8: { size: 1, read: (data, at) => data.readUInt8(at) },
  INT8: { size: 1, read: (data, at) => data.readInt8(at) },
  UINT16: { size: 2, read: (data, at) => data.readUInt16LE(at) },
  INT16: { size: 2, read: (data, at) => data.readInt16LE(at) },
  UINT32: { size: 4, read: (data, at) => data.readUInt32LE(at) },
  INT32: { size: 4, read: (data, at) => data.readInt32LE(at) },
  UINT64: { size: 8, read: (data, at) => Number(data.readBigUInt64LE(at)) },
  INT64: { size: 8, read: (data, at) => Number(data.readBigInt64LE(at)) },
  FP32: { size: 4, read: (data, at) => data.readFloatLE(at) },
  FP64: { size: 8, read: (data, at) => data.readDoubleLE(at) },
};

/** A binary tensor's elements as JSON would hold them: BYTES as UTF-8 strings, numbers as numbers, BOOL as booleans. */
export function decodeTensorData(datatype: string, data: Buffer, what: string): Array<string | number | boolean> {
  if (datatype === 'BYTES') return decodeBytesTensor(data, what).map((element) => element.toString('utf8'));
  const type = FIXED_SIZE[datatype];
  if (type === undefined) throw new InferenceProtocolError(`${what} has datatype ${datatype}, which imgpush does not decode from binary`);
  if (data.length % type.size !== 0) throw new InferenceProtocolError(`the binary data of ${what} is ${data.length} bytes, not a whole number of ${datatype} elements (${type.size} bytes each)`);
  return Array.from({ length: data.length / type.size }, (_, i) => type.read(data, i * type.size));
}

/** A body in the binary extension: the JSON header, then each tensor's bytes in order. */
export function joinBinaryBody(header: unknown, tensors: readonly Uint8Array[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}

/**
 * Splits a body into its JSON header, parsed, and the binary data after
 * it. Without a header length (a plain JSON body) the whole body is JSON.
 */
export function splitBinaryBody(body: Buffer, headerLength: string | number | undefined): { header: unknown; binary: Buffer } {
  let length = body.length;
  if (headerLength !== undefined) {
    const text = String(headerLength).trim();
    if (!/^\d+$/.test(text)) throw new InferenceProtocolError(`Inference-Header-Content-Length must be a whole number of bytes (got ${JSON.stringify(text)})`);
    length = Number(text);
    if (length > body.length) throw new InferenceProtocolError(`Inference-Header-Content-Length is ${length} but the whole body is ${body.length} bytes`);
  }
  if (length === 0) {
    throw new InferenceProtocolError(headerLength === undefined ? 'the body is empty: send the inference request as JSON' : 'Inference-Header-Content-Length is 0: the body must start with the inference request as JSON');
  }
  let header: unknown;
  try {
    header = JSON.parse(body.toString('utf8', 0, length));
  } catch (error) {
    const where = headerLength === undefined ? 'the body' : `the JSON header (the first ${length} bytes, by Inference-Header-Content-Length)`;
    throw new InferenceProtocolError(`${where} does not parse as JSON: ${(error as Error).message}`);
  }
  return { header, binary: body.subarray(length) };
}

export interface ImageRequestOptions {
  /** The model's input name; default `image`, what `imgpush serve` calls it. */
  readonly inputName?: string;
  /** Echoed in the answer. */
  readonly id?: string;
  /** Labels per image (`parameters.top_k`). */
  readonly topK?: number;
  /** The images as binary tensor data (the default), or as base64 strings in plain JSON. */
  readonly binaryInput?: boolean;
  /** Ask for every output as binary tensor data (`parameters.binary_data_output`). */
  readonly binaryOutput?: boolean;
}

/**
 * A v2 inference request holding `images` (encoded files, as they are on
 * disk) as one BYTES input of shape [N], with the headers to send it with.
 *
 * @example
 * const { body, headers } = encodeImageRequest([jpeg, png], { topK: 3 });
 * await request(`${url}/v2/models/builtin:colors/infer`, { method: 'POST', body, headers });
 */
export function encodeImageRequest(images: readonly Uint8Array[], options: ImageRequestOptions = {}): { body: Buffer; headers: Record<string, string> } {
  if (options.binaryInput === false) {
    const data = images.map((image) => Buffer.from(image.buffer, image.byteOffset, image.byteLength).toString('base64'));
    // The same request, with the images in `data` instead of after the header.
    const { inputs: [{ parameters: _binary, ...input }], ...request } = imageRequestHeader([], options);
    return { body: Buffer.from(JSON.stringify({ ...request, inputs: [{ ...input, shape: [images.length], data }] })), headers: { 'content-type': 'application/json' } };
  }
  const tensor = encodeBytesTensor(images);
  const { body, headerLength } = joinBinaryBody(imageRequestHeader(images.map((image) => image.length), options), [tensor]);
  return { body, headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) } };
}

/**
 * The JSON header of a binary-extension request whose one BYTES input holds
 * images of these sizes, in order: its binary data is, per image, a 4-byte
 * length (see lengthPrefix) and the image's bytes.
 */
export function imageRequestHeader(sizes: readonly number[], options: ImageRequestOptions = {}): { inputs: [Record<string, unknown>]; [key: string]: unknown } {
  const parameters: Record<string, unknown> = {};
  if (options.topK !== undefined) parameters.top_k = options.topK;
  if (options.binaryOutput === true) parameters.binary_data_output = true;
  const binarySize = sizes.reduce((total, size) => total + LENGTH_PREFIX + size, 0);
  return {
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(Object.keys(parameters).length === 0 ? {} : { parameters }),
    inputs: [{ name: options.inputName ?? 'image', shape: [sizes.length], datatype: 'BYTES', parameters: { binary_data_size: binarySize } }],
  };
}

/** The 4-byte little-endian length that goes before a BYTES element of `size` bytes in binary layout. */
export function lengthPrefix(size: number): Buffer {
  const prefix = Buffer.allocUnsafe(LENGTH_PREFIX);
  prefix.writeUInt32LE(size, 0);
  return prefix;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((count, size) => count * size, 1);
}

/**
 * A v2 inference answer, JSON or binary extension, with every binary output
 * decoded into `data` (so the caller reads both forms alike). `headerLength`
 * is the answer's Inference-Header-Content-Length, if it had one.
 */
export function decodeInferenceResponse(body: Buffer, headerLength: string | number | undefined): InferenceResponse {
  const { header, binary } = splitBinaryBody(body, headerLength);
  if (!isRecord(header) || !Array.isArray(header.outputs)) throw new InferenceProtocolError('the answer is not a v2 inference response: it has no "outputs" list');
  let at = 0;
  const outputs = header.outputs.map((output: unknown, index): ResponseTensor => {
    if (!isRecord(output) || typeof output.name !== 'string' || typeof output.datatype !== 'string' || !Array.isArray(output.shape)) {
      throw new InferenceProtocolError(`output ${index} of the answer lacks its name, datatype or shape`);
    }
    const tensor = output as unknown as ResponseTensor;
    const size = tensor.parameters?.binary_data_size;
    if (size === undefined) return tensor;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || size > binary.length - at) {
      throw new InferenceProtocolError(`output ${tensor.name} says binary_data_size ${String(size)} but ${binary.length - at} bytes of binary data are left`);
    }
    const data = decodeTensorData(tensor.datatype, binary.subarray(at, at + size), `output ${tensor.name}`);
    at += size;
    if (data.length !== elementCount(tensor.shape)) {
      throw new InferenceProtocolError(`output ${tensor.name} holds ${data.length} elements where its shape ${JSON.stringify(tensor.shape)} wants ${elementCount(tensor.shape)}`);
    }
    return { ...tensor, data };
  });
  if (at !== binary.length) throw new InferenceProtocolError(`${binary.length - at} bytes follow the outputs' binary data`);
  return { ...(header as unknown as InferenceResponse), outputs };
}
