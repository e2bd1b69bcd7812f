import { decodeInferenceResponse, HEADER_LENGTH, imageRequestHeader, lengthPrefix } from '../../shared/inference-protocol.js';
import { decodeAnswer, listedAnswers, MAX_ANSWER_BYTES, type BodyFile, type BodyFormat, type Envelope, type GroupFrame, type RawAnswer } from './body-format.js';

/**
 * --body v2: bodies in the Open Inference Protocol (KServe v2, Triton): a
 * request's files as one BYTES input of shape [N], sent with the binary
 * tensor data extension, so each file's bytes go as they are on disk, with
 * no base64 and no copy: a JSON header, then per file a 4-byte length and
 * its bytes. Answers are decoded from JSON or binary outputs, and cut into
 * each file's rows.
 */
export class InferenceBody implements BodyFormat {
  readonly #inputName: string;
  static readonly #after = Buffer.alloc(0);

  constructor(inputName: string) {
    this.#inputName = inputName;
  }

  envelope(file: BodyFile): Envelope {
    const { before: [head], after, contentType, headers } = this.frame([file]);
    return { head, tail: after, base64: false, contentType, headers };
  }

  /** What goes before each file's bytes (the header before the first), what goes after the last, and the header's length. */
  readonly frame = (files: readonly Pick<BodyFile, 'size'>[]): GroupFrame => {
    const sizes = files.map((file) => file.size);
    const header = Buffer.from(JSON.stringify(imageRequestHeader(sizes, { inputName: this.#inputName })));
    const before = sizes.map(lengthPrefix);
    before[0] = Buffer.concat([header, before[0] as Buffer]);
    return { before, after: InferenceBody.#after, contentType: 'application/octet-stream', headers: { [HEADER_LENGTH]: String(header.length) } };
  };

  decode(answer: RawAnswer): unknown {
    const headerLength = answer.headers[HEADER_LENGTH];
    if (answer.length <= MAX_ANSWER_BYTES && typeof headerLength === 'string') {
      try {
        return decodeInferenceResponse(answer.bytes, headerLength);
      } catch {
        // Not a v2 answer after all: read it as any other.
      }
    }
    return decodeAnswer(answer);
  }

  single(response: unknown): unknown {
    return inferencePerFile(response, 1)?.[0] ?? response;
  }

  perFile(response: unknown, count: number): unknown[] {
    return inferencePerFile(response, count) ?? listedAnswers(response, count);
  }
}

/** Where a model's inferences go under a server's base URL. */
export function inferPath(base: string, model: string): string {
  return `${base.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(model)}/infer`;
}

interface Tensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly data?: readonly unknown[];
}

function isTensor(value: unknown): value is Tensor {
  const tensor = value as Partial<Tensor> | null;
  return typeof tensor === 'object' && tensor !== null && typeof tensor.name === 'string' && Array.isArray(tensor.shape) && (tensor.data === undefined || Array.isArray(tensor.data));
}

/**
 * Each file's share of a v2 answer to a request of `count` files: every
 * output whose first dimension is `count` cut into its rows, so that a
 * file's line in the results log holds its own labels and scores. Undefined
 * when the answer is no v2 answer of that many rows.
 */
function inferencePerFile(response: unknown, count: number): unknown[] | undefined {
  const { outputs, ...rest } = (typeof response === 'object' && response !== null ? response : {}) as { outputs?: unknown };
  if (!Array.isArray(outputs) || !outputs.every(isTensor) || !outputs.every((output) => output.shape[0] === count && output.data !== undefined)) return undefined;
  return Array.from({ length: count }, (_, row) => ({
    ...rest,
    outputs: outputs.map(({ data, shape, ...tensor }) => {
      const width = (data as readonly unknown[]).length / count;
      return { ...tensor, shape: shape.slice(1), data: (data as readonly unknown[]).slice(row * width, (row + 1) * width) };
    }),
  }));
}
