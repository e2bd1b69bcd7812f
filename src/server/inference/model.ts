import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, parse } from 'node:path';
import ort from 'onnxruntime-node';
import { UsageError } from '../../shared/errors.js';
import { colorsModel, syntheticModel, type BuiltinModel } from '../../models/builtin.js';
import type { ImageSpec } from './preprocess.js';

type Device = 'cpu' | 'cuda' | 'auto';

export interface ModelOptions {
  /** `builtin:colors`, `builtin:synthetic`, or a path to an .onnx file. */
  readonly model: string;
  /** A user model's labels: a file with one label a line. */
  readonly labels?: string;
  readonly inputSize?: number;
  readonly mean?: readonly [number, number, number];
  readonly std?: readonly [number, number, number];
  readonly layout?: 'nchw' | 'nhwc';
  readonly device: Device;
  readonly threads?: number;
  /** Things the operator should know (a fallback to CPU). */
  readonly log: (message: string) => void;
}

/** A loaded model, ready to run batches of prepared images. */
export interface Model {
  /** The name answers give, the one a tritonclient user guesses: `colors`, `synthetic`, a model file's stem. */
  readonly name: string;
  /** Other names a v2 path may call it by: `builtin:colors`, `resnet50.onnx`. */
  readonly aliases: readonly string[];
  readonly device: 'cpu' | 'cuda';
  readonly labels: readonly string[];
  readonly image: ImageSpec;
  readonly inputName: string;
  readonly outputName: string;
  readonly inputShape: ReadonlyArray<number | string>;
  /** Runs a batch; one row of label probabilities per image. */
  run(inputs: readonly Float32Array[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];
const CUDA_HELP = 'onnxruntime-node fetches its CUDA 12 libraries at install time, and this install skipped them: '
  + 'run `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` on a machine with an NVIDIA driver and CUDA 12 (README: GPU)';

function builtin(name: string): BuiltinModel | undefined {
  if (name === 'builtin:colors') return colorsModel();
  if (name === 'builtin:synthetic') return syntheticModel();
  return undefined;
}

/** `builtin:colors` is served as `colors`, `models/resnet50.onnx` as `resnet50`; the spelling --model used stays an alias. */
function servedNames(model: string): { name: string; aliases: string[] } {
  if (model.startsWith('builtin:')) return { name: model.slice('builtin:'.length), aliases: [model] };
  const file = basename(model);
  const { name } = parse(file);
  return { name, aliases: name === file ? [] : [file] };
}

/** Whether onnxruntime-node's CUDA provider library is installed beside its binding. */
function cudaLibraryInstalled(): boolean {
  const binding = createRequire(import.meta.url).resolve('onnxruntime-node');
  const root = join(dirname(binding), '..', '..');
  return ['napi-v6', 'napi-v3'].some((napi) => existsSync(join(root, 'bin', napi, process.platform, process.arch, 'libonnxruntime_providers_cuda.so')));
}

/**
 * The model's threads on CPU unless --threads says: half the cores, at least one. It shares them with the
 * image decoders and HTTP; onnxruntime's own default, every core, splits each run across threads that then
 * wait (spinning) for a core a decoder holds: 12.6 ms of CPU per image at batch 1 on 2 busy cores, against 6.2 on one.
 */
function cpuThreads(options: ModelOptions): number {
  return options.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
}

async function createSession(bytes: Uint8Array, options: ModelOptions): Promise<{ session: ort.InferenceSession; device: 'cpu' | 'cuda' }> {
  const common: ort.InferenceSession.SessionOptions = options.threads === undefined ? {} : { intraOpNumThreads: options.threads };
  if (options.device !== 'cpu') {
    const why = cudaLibraryInstalled() ? undefined : 'the CUDA execution provider is not installed';
    if (why === undefined) {
      try {
        return { session: await ort.InferenceSession.create(bytes, { ...common, executionProviders: ['cuda'] }), device: 'cuda' };
      } catch (error) {
        if (options.device === 'cuda') throw new UsageError('IMGPUSH_NO_CUDA', `--device cuda: CUDA could not start (${(error as Error).message.split('\n')[0]}); ${CUDA_HELP}`);
        options.log(`CUDA could not start (${(error as Error).message.split('\n')[0]}): running on CPU`);
      }
    } else if (options.device === 'cuda') {
      throw new UsageError('IMGPUSH_NO_CUDA', `--device cuda: ${why}. ${CUDA_HELP}`);
    } else {
      options.log(`${why}: running on CPU (--device auto)`);
    }
  }
  return { session: await ort.InferenceSession.create(bytes, { intraOpNumThreads: cpuThreads(options), executionProviders: ['cpu'] }), device: 'cpu' };
}

async function readLabels(path: string | undefined, count: number): Promise<string[]> {
  if (path === undefined) return Array.from({ length: count }, (_, i) => `class-${i}`);
  try {
    return (await readFile(path, 'utf8')).split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '');
  } catch (error) {
    throw new UsageError('IMGPUSH_USAGE', `--labels ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (error as Error).message}`);
  }
}

/** Softmax in place when a model gives logits rather than probabilities. */
function toProbabilities(row: Float32Array): Float32Array {
  const sum = row.reduce((a, b) => a + b, 0);
  if (row.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 1e-3) return row;
  const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
  let total = 0;
  for (let i = 0; i < row.length; i++) total += row[i] = Math.exp((row[i] as number) - max);
  for (let i = 0; i < row.length; i++) row[i] = (row[i] as number) / total;
  return row;
}

/**
 * Loads a model once: a built-in one, built in memory, or a user's .onnx
 * file. Input and output names and shapes come from the session; the image
 * size from the input's shape when it is fixed, else --input-size.
 */
export async function loadModel(options: ModelOptions): Promise<Model> {
  const known = builtin(options.model);
  if (known === undefined && options.model.startsWith('builtin:')) {
    throw new UsageError('IMGPUSH_USAGE', `--model ${options.model}: no such built-in model (builtin:colors, builtin:synthetic)`);
  }
  let bytes: Uint8Array;
  try {
    bytes = known?.bytes ?? await readFile(options.model);
  } catch (error) {
    throw new UsageError('IMGPUSH_USAGE', `--model ${options.model}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (error as Error).message}`);
  }
  let created: Awaited<ReturnType<typeof createSession>>;
  try {
    created = await createSession(bytes, options);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError('IMGPUSH_BAD_MODEL', `--model ${options.model}: onnxruntime cannot load it (${(error as Error).message.split('\n')[0]})`);
  }
  const { session, device } = created;
  const inputName = session.inputNames[0] as string;
  const outputName = session.outputNames[0] as string;
  const metadata = session.inputMetadata.find((input) => input.name === inputName);
  const inputShape = metadata !== undefined && metadata.isTensor ? metadata.shape : [];
  const layout = options.layout ?? 'nchw';
  const fixedSize = inputShape[layout === 'nchw' ? 2 : 1];
  const size = options.inputSize ?? known?.inputSize ?? (typeof fixedSize === 'number' ? fixedSize : 224);
  const classes = known?.labels.length;
  const labels = known?.labels.slice() ?? await readLabels(options.labels, classes ?? 1000);
  const image: ImageSpec = { size, layout, mean: options.mean ?? known?.mean ?? IMAGENET_MEAN, std: options.std ?? known?.std ?? IMAGENET_STD };
  return {
    ...servedNames(options.model),
    device,
    labels,
    image,
    inputName,
    outputName,
    inputShape,
    async run(inputs) {
      const perImage = 3 * size * size;
      // One image is its own batch: no copy of its 600 KB.
      const batch = inputs.length === 1 ? inputs[0] as Float32Array : new Float32Array(inputs.length * perImage);
      if (inputs.length > 1) inputs.forEach((input, i) => batch.set(input, i * perImage));
      const dims = layout === 'nchw' ? [inputs.length, 3, size, size] : [inputs.length, size, size, 3];
      const outputs = await session.run({ [inputName]: new ort.Tensor('float32', batch, dims) });
      const scores = outputs[outputName]?.data as Float32Array;
      const width = scores.length / inputs.length;
      return inputs.map((_, i) => toProbabilities(scores.slice(i * width, (i + 1) * width)));
    },
    release: () => session.release(),
  };
}
