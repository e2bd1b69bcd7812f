import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeBytesTensor, encodeBytesTensor, encodeFp32Tensor, InferenceProtocolError, joinBinaryBody, splitBinaryBody,
  type InferenceResponse, type ResponseTensor,
} from '../shared/inference-protocol.js';
import { ServerError } from './errors.js';

/*
 * The server's side of the Open Inference Protocol (KServe v2 / Triton):
 * what an infer request asks, checked once, and the answer's wire form.
 * The model's own tensors stay inside: the public input is the encoded
 * images, which the server decodes and resizes as it does for /v1/predict.
 */

/** The one input: BYTES, one encoded image (JPEG, PNG…) per element. */
const INPUT_NAME = 'image';
/** Models here have one version; a path may name it. */
export const MODEL_VERSION = '1';
const OUTPUT_NAMES = ['label', 'score'] as const;
type OutputName = (typeof OUTPUT_NAMES)[number];

/** Room in the body limit for the JSON around the images: names, shape, parameters, quotes and commas. */
const JSON_ALLOWANCE = 64 * 1024;

export interface InferLimits {
  readonly maxFiles: number;
  readonly maxFileSize: number;
  /** --max-body-size: no body is larger, whatever the two above allow. */
  readonly maxBodySize: number;
}

/** An infer request, checked. */
export interface InferCall {
  readonly id: string | undefined;
  readonly images: readonly Buffer[];
  /** Columns of `label` and `score`, from parameters.top_k; undefined: the server's default. */
  readonly topK: number | undefined;
  /** The outputs to answer with, in order, each as JSON data or binary tensor data. */
  readonly outputs: readonly RequestedOutput[];
}

interface RequestedOutput {
  readonly name: OutputName;
  readonly binary: boolean;
  /** Triton's classification parameter: this output comes as `score:index:label` strings, this many per image. */
  readonly classification: number | undefined;
}

/** One ranked class of one image: its label, its score and its index in the model's output. */
export interface RankedClass {
  readonly label: string;
  readonly score: number;
  readonly index: number;
}

/** The largest infer body: --max-files images of --max-file-size in base64 (the larger of the two forms) and their JSON, within --max-body-size. */
export function inferBodyLimit(limits: InferLimits): { bytes: number; why: string } {
  const images = limits.maxFiles * (Math.ceil(limits.maxFileSize / 3) * 4 + 4) + JSON_ALLOWANCE;
  if (limits.maxBodySize <= images) return { bytes: limits.maxBodySize, why: `--max-body-size ${limits.maxBodySize}` };
  return { bytes: images, why: `${images} bytes, what --max-files ${limits.maxFiles} images of --max-file-size ${limits.maxFileSize} bytes take in base64` };
}

/** GET /v2/models/{name}: labels and scores come out [N, k], k per request. */
export function modelMetadata(name: string): object {
  return {
    name,
    versions: [MODEL_VERSION],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: INPUT_NAME, datatype: 'BYTES', shape: [-1] }],
    outputs: [{ name: 'label', datatype: 'BYTES', shape: [-1, -1] }, { name: 'score', datatype: 'FP32', shape: [-1, -1] }],
  };
}

/** GET /v2/models/{name}/config, in the manner of Triton's model configuration. */
export function modelConfig(name: string, batching: { readonly maxBatch: number; readonly delayMs: number }): object {
  return {
    name,
    platform: 'onnxruntime_onnx',
    max_batch_size: batching.maxBatch,
    input: [{ name: INPUT_NAME, data_type: 'TYPE_STRING', dims: [1] }],
    output: [{ name: 'label', data_type: 'TYPE_STRING', dims: [-1] }, { name: 'score', data_type: 'TYPE_FP32', dims: [-1] }],
    dynamic_batching: { max_queue_delay_microseconds: batching.delayMs * 1000 },
  };
}

/** imgpush's version, from the package.json above this module (dist/ once installed, build/src/ in tests). */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

/** GET /v2 (read once: it reads package.json). */
export function serverMetadata(): object {
  return { name: 'imgpush', version: packageVersion(), extensions: ['binary_tensor_data', 'classification'] };
}

function fail(message: string): never {
  throw new InferenceProtocolError(message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalRecord(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) fail(`${what} must be an object`);
  return value;
}

function optionalBoolean(value: unknown, what: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') fail(`${what} must be true or false (got ${preview(value)})`);
  return value;
}

function optionalCount(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) fail(`${what} must be a whole number of 1 or more (got ${preview(value)})`);
  return value;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}

/**
 * A client's value as a message shows it: scalars and short lists of
 * numbers as JSON, anything else by its kind. Never a walk of a nested
 * value: JSON.stringify of a list nested 10,000 deep overflows the stack.
 */
function preview(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (Array.isArray(value) && value.length <= 8 && value.every((item) => typeof item === 'number')) return JSON.stringify(value);
  return Array.isArray(value) ? `a list of ${value.length}` : kindOf(value);
}

const NOT_BASE64 = /[^A-Za-z0-9+/]/;

/** Standard base64, padded or not; undefined when it is not (Buffer.from would skip bad characters silently). */
function fromBase64(text: string): Buffer | undefined {
  const end = text.endsWith('==') ? text.length - 2 : text.endsWith('=') ? text.length - 1 : text.length;
  if (NOT_BASE64.test(text.slice(0, end)) || end % 4 === 1 || (end !== text.length && text.length % 4 !== 0)) return undefined;
  return Buffer.from(text, 'base64');
}

/** JSON holds BYTES as strings; images, being binary, come as base64. */
function imagesFromJson(data: unknown, count: number): Buffer[] {
  if (!Array.isArray(data)) fail(`input "${INPUT_NAME}" has neither "data" nor parameters.binary_data_size`);
  // Shape [N, 1] may come nested, one list per image.
  const elements = (data as unknown[]).flat();
  // Checked before any element is decoded: 5 M empty strings must cost one comparison, not 5 M Buffers.
  if (elements.length !== count) fail(`input "${INPUT_NAME}" has shape [${count}] but its data holds ${elements.length} elements`);
  return elements.map((element, i) => {
    if (typeof element !== 'string') fail(`input image ${i} is ${kindOf(element)}, not a base64 string`);
    return fromBase64(element) ?? fail(`input image ${i} is not base64 (in JSON, each image is a base64 string of its file's bytes)`);
  });
}

/** The one input's binary data: all that follows the JSON header, exactly binary_data_size bytes. */
function imagesFromBinary(size: unknown, binary: Buffer): Buffer[] {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) fail(`input "${INPUT_NAME}" has binary_data_size ${preview(size)}: it must be a whole number of bytes`);
  if (size > binary.length) fail(`input "${INPUT_NAME}" says binary_data_size ${size} but only ${binary.length} bytes follow the JSON header`);
  if (size < binary.length) fail(`${binary.length} bytes follow the JSON header but input "${INPUT_NAME}" says binary_data_size ${size}`);
  return decodeBytesTensor(binary, `input "${INPUT_NAME}"`);
}

function imageCount(shape: unknown): number {
  const fits = Array.isArray(shape) && (shape.length === 1 || (shape.length === 2 && shape[1] === 1)) && Number.isInteger(shape[0]) && shape[0] >= 0;
  if (!fits) fail(`input "${INPUT_NAME}" has shape ${preview(shape)}: it takes [N] or [N, 1], one encoded image per element`);
  return (shape as number[])[0] as number;
}

function requestImages(inputs: unknown, binary: Buffer, limits: InferLimits): Buffer[] {
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    fail(`the request must hold one input, "${INPUT_NAME}" (BYTES, the encoded images); it holds ${Array.isArray(inputs) ? inputs.length : 'none'}`);
  }
  const input: unknown = inputs[0];
  if (!isRecord(input)) fail('input 0 must be an object');
  if (input.name !== INPUT_NAME) fail(`unknown input ${preview(input.name)}: this model's input is "${INPUT_NAME}"`);
  if (input.datatype !== 'BYTES') fail(`input "${INPUT_NAME}" has datatype ${preview(input.datatype)}: it takes BYTES, one encoded image per element`);
  const count = imageCount(input.shape);
  if (count === 0) fail(`input "${INPUT_NAME}" holds no image`);
  if (count > limits.maxFiles) throw new ServerError('IMGPUSH_TOO_MANY_FILES', `the request holds ${count} images, over --max-files ${limits.maxFiles}`);
  const size = optionalRecord(input.parameters, `input "${INPUT_NAME}" parameters`).binary_data_size;
  if (size !== undefined && input.data !== undefined) fail(`input "${INPUT_NAME}" has both "data" and binary_data_size: send one`);
  if (size === undefined && binary.length > 0) fail(`${binary.length} bytes follow the JSON header but no input says binary_data_size`);
  const images = size === undefined ? imagesFromJson(input.data, count) : imagesFromBinary(size, binary);
  if (images.length !== count) fail(`input "${INPUT_NAME}" has shape ${preview(input.shape)} but its data holds ${images.length} images`);
  images.forEach((image, i) => {
    if (image.length > limits.maxFileSize) throw new ServerError('IMGPUSH_FILE_TOO_LARGE', `input image ${i} is ${image.length} bytes, over --max-file-size ${limits.maxFileSize}`);
  });
  return images;
}

function isOutputName(name: string): name is OutputName {
  return (OUTPUT_NAMES as readonly string[]).includes(name);
}

/** The outputs asked for (all, when the request names none), each with its classification count if it asks one. */
function requestedOutputs(outputs: unknown, binaryByDefault: boolean): RequestedOutput[] {
  if (outputs === undefined || (Array.isArray(outputs) && outputs.length === 0)) {
    return OUTPUT_NAMES.map((name) => ({ name, binary: binaryByDefault, classification: undefined }));
  }
  if (!Array.isArray(outputs)) fail('"outputs" must be a list');
  const seen = new Set<string>();
  return (outputs as unknown[]).map((output, i) => {
    if (!isRecord(output) || typeof output.name !== 'string') fail(`output ${i} must be an object with a name`);
    const { name } = output;
    if (!isOutputName(name)) fail(`unknown output ${preview(name)}: this model's outputs are "label" and "score"`);
    if (seen.has(name)) fail(`output "${name}" is asked for twice`);
    seen.add(name);
    const parameters = optionalRecord(output.parameters, `output "${name}" parameters`);
    return {
      name,
      binary: optionalBoolean(parameters.binary_data, `output "${name}" binary_data`) ?? binaryByDefault,
      classification: optionalCount(parameters.classification, `output "${name}" classification`),
    };
  });
}

/**
 * Checks an infer request, JSON or binary extension (`headerLength` is its
 * Inference-Header-Content-Length); a 400 (InferenceProtocolError) names
 * what is wrong, a 413 which limit it passes.
 */
export function parseInferRequest(body: unknown, headerLength: string | string[] | undefined, limits: InferLimits): InferCall {
  if (Array.isArray(headerLength)) fail('Inference-Header-Content-Length is given more than once');
  const { header, binary } = splitBinaryBody(Buffer.isBuffer(body) ? body : Buffer.alloc(0), headerLength);
  if (!isRecord(header)) fail('the inference request must be a JSON object');
  if (header.id !== undefined && typeof header.id !== 'string') fail(`"id" must be a string (got ${kindOf(header.id)})`);
  const images = requestImages(header.inputs, binary, limits);
  const parameters = optionalRecord(header.parameters, '"parameters"');
  const topK = optionalCount(parameters.top_k, 'parameters.top_k');
  const outputs = requestedOutputs(header.outputs, optionalBoolean(parameters.binary_data_output, 'parameters.binary_data_output') ?? false);
  return { id: header.id, images, topK, outputs };
}

/** How many ranked classes per image the answer to `call` needs: the most any of its outputs shows. */
export function classesNeeded(call: InferCall, defaultTopK: number): number {
  return Math.max(call.topK ?? defaultTopK, ...call.outputs.map((output) => output.classification ?? 0));
}

/** Triton's classification string: the score as C++'s std::to_string prints a float (six decimals), the class's index, its label. */
function classificationString(entry: RankedClass): string {
  return `${entry.score.toFixed(6)}:${entry.index}:${entry.label}`;
}

type OutputValues = { readonly datatype: 'BYTES'; readonly values: string[] } | { readonly datatype: 'FP32'; readonly values: number[] };

/** One output's values, row after row, and its datatype and shape. */
function outputColumns(output: RequestedOutput, top: ReadonlyArray<readonly RankedClass[]>, k: number): OutputValues & { shape: number[] } {
  const columns = Math.min(output.classification ?? k, top[0]?.length ?? 0);
  const rows = top.map((row) => row.slice(0, columns));
  const shape = [top.length, columns];
  if (output.classification !== undefined) return { datatype: 'BYTES', shape, values: rows.flatMap((row) => row.map(classificationString)) };
  if (output.name === 'label') return { datatype: 'BYTES', shape, values: rows.flatMap((row) => row.map((entry) => entry.label)) };
  return { datatype: 'FP32', shape, values: rows.flatMap((row) => row.map((entry) => entry.score)) };
}

/**
 * The answer to `call`, given each image's ranked classes (all rows of one
 * length, at least `classesNeeded`): label BYTES [N, k] and score FP32
 * [N, k] with k from top_k (`defaultTopK` when it names none); an output
 * with a classification parameter is BYTES [N, count] of Triton's
 * `score:index:label` strings instead. JSON unless an output was asked
 * for as binary, then in the binary extension.
 */
export function encodeInferAnswer(
  call: InferCall,
  modelName: string,
  top: ReadonlyArray<readonly RankedClass[]>,
  defaultTopK: number,
): { json: InferenceResponse } | { body: Buffer; headerLength: number } {
  const k = call.topK ?? defaultTopK;
  const binary: Buffer[] = [];
  const outputs = call.outputs.map((output): ResponseTensor => {
    const tensor = outputColumns(output, top, k);
    const { datatype, shape } = tensor;
    if (!output.binary) return { name: output.name, datatype, shape, data: tensor.values };
    const bytes = tensor.datatype === 'BYTES' ? encodeBytesTensor(tensor.values) : encodeFp32Tensor(tensor.values);
    binary.push(bytes);
    return { name: output.name, datatype, shape, parameters: { binary_data_size: bytes.length } };
  });
  const answer: InferenceResponse = { model_name: modelName, model_version: MODEL_VERSION, ...(call.id === undefined ? {} : { id: call.id }), outputs };
  return binary.length === 0 ? { json: answer } : joinBinaryBody(answer, binary);
}
