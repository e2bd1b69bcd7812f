import { encodeModel, type Initializer, type Node } from './onnx.js';
import { seededRandom } from './random.js';

/** A model imgpush builds itself: its ONNX bytes, its labels and how images are prepared for it. */
export interface BuiltinModel {
  readonly name: string;
  readonly description: string;
  readonly bytes: Uint8Array;
  readonly labels: readonly string[];
  /** Images are resized to this square before inference. */
  readonly inputSize: number;
  /** Per channel, after scaling pixels to 0–1: (x - mean) / std. */
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  /** Multiply-adds ×2 per image, for load tests. */
  readonly flopsPerImage: number;
}

/** The colours `builtin:colors` tells apart, as RGB in 0–1. */
const PALETTE: ReadonlyArray<readonly [string, readonly [number, number, number]]> = [
  ['red', [1, 0, 0]],
  ['green', [0, 1, 0]],
  ['blue', [0, 0, 1]],
  ['yellow', [1, 1, 0]],
  ['cyan', [0, 1, 1]],
  ['magenta', [1, 0, 1]],
  ['white', [1, 1, 1]],
  ['black', [0, 0, 0]],
  ['gray', [0.5, 0.5, 0.5]],
];

/** How sure the softmax is: a plain colour scores near 1 for its own label. */
const COLORS_SHARPNESS = 20;

/**
 * Dominant colour: the mean colour c of the image, scored against each
 * palette colour p by −|c − p|². The |c|² term is the same for every label,
 * so the score is the linear 2c·p − |p|²: one MatMul and one Add.
 */
export function colorsModel(): BuiltinModel {
  const labels = PALETTE.map(([label]) => label);
  const weights = new Float32Array(3 * PALETTE.length);
  const bias = new Float32Array(PALETTE.length);
  PALETTE.forEach(([, rgb], k) => {
    rgb.forEach((value, channel) => {
      weights[channel * PALETTE.length + k] = 2 * value;
    });
    bias[k] = -rgb.reduce((sum, value) => sum + value * value, 0);
  });
  const bytes = encodeModel({
    name: 'colors',
    doc: 'imgpush builtin:colors: the dominant colour of an image',
    opset: 13,
    inputs: [{ name: 'image', shape: ['batch', 3, 'height', 'width'] }],
    outputs: [{ name: 'probabilities', shape: ['batch', PALETTE.length] }],
    initializers: [
      { name: 'palette', dims: [3, PALETTE.length], values: weights },
      { name: 'bias', dims: [PALETTE.length], values: bias },
      { name: 'sharpness', dims: [1], values: Float32Array.of(COLORS_SHARPNESS) },
    ],
    nodes: [
      { op: 'ReduceMean', inputs: ['image'], outputs: ['mean'], attributes: { axes: [2, 3], keepdims: 0 } },
      { op: 'MatMul', inputs: ['mean', 'palette'], outputs: ['dot'] },
      { op: 'Add', inputs: ['dot', 'bias'], outputs: ['logits'] },
      { op: 'Mul', inputs: ['logits', 'sharpness'], outputs: ['scaled'] },
      { op: 'Softmax', inputs: ['scaled'], outputs: ['probabilities'], attributes: { axis: 1 } },
    ],
  });
  return {
    name: 'builtin:colors',
    description: 'dominant colour of the image, one of 9 colours',
    bytes,
    labels,
    inputSize: 32,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    flopsPerImage: 3 * 32 * 32 + 2 * 3 * PALETTE.length,
  };
}

/** Fixed pseudo-random weights in [-scale, scale): the same model on every machine. */
function weightsFrom(seed: number, count: number, scale: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: count }, () => (random() * 2 - 1) * scale);
}

const SYNTHETIC_CLASSES = 10;
const SYNTHETIC_INPUT = 224;

/**
 * A stack of 3x3 convolutions whose cost resembles a small real CNN: at
 * `width` 1 about 0.5 GFLOP per 224x224 image. Channels double and the
 * image halves every other layer; a global average pool and a dense layer
 * give 10 classes. Weights are random but fixed: the answers mean nothing,
 * the work is real.
 */
export function syntheticModel(width = 1): BuiltinModel {
  const channels = [16, 32, 32, 64, 64, 128, 128].map((c) => Math.max(1, Math.round(c * width)));
  const nodes: Node[] = [];
  const initializers: Initializer[] = [];
  let input = 'image';
  let inChannels = 3;
  let size = SYNTHETIC_INPUT;
  let flops = 0;
  channels.forEach((outChannels, layer) => {
    const stride = layer % 2 === 0 ? 2 : 1;
    const weight = `conv${layer}.weight`;
    const bias = `conv${layer}.bias`;
    initializers.push(
      { name: weight, dims: [outChannels, inChannels, 3, 3], values: weightsFrom(layer + 1, outChannels * inChannels * 9, Math.sqrt(2 / (inChannels * 9))) },
      { name: bias, dims: [outChannels], values: new Float32Array(outChannels) },
    );
    size = Math.ceil(size / stride);
    flops += 2 * outChannels * inChannels * 9 * size * size;
    nodes.push(
      { op: 'Conv', inputs: [input, weight, bias], outputs: [`conv${layer}`], attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [stride, stride] } },
      { op: 'Relu', inputs: [`conv${layer}`], outputs: [`relu${layer}`] },
    );
    input = `relu${layer}`;
    inChannels = outChannels;
  });
  initializers.push(
    { name: 'dense.weight', dims: [inChannels, SYNTHETIC_CLASSES], values: weightsFrom(99, inChannels * SYNTHETIC_CLASSES, Math.sqrt(1 / inChannels)) },
    { name: 'dense.bias', dims: [SYNTHETIC_CLASSES], values: new Float32Array(SYNTHETIC_CLASSES) },
  );
  nodes.push(
    { op: 'GlobalAveragePool', inputs: [input], outputs: ['pooled'] },
    { op: 'Flatten', inputs: ['pooled'], outputs: ['features'], attributes: { axis: 1 } },
    { op: 'Gemm', inputs: ['features', 'dense.weight', 'dense.bias'], outputs: ['logits'] },
    { op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: 1 } },
  );
  flops += 2 * inChannels * SYNTHETIC_CLASSES;
  return {
    name: 'builtin:synthetic',
    description: `a stack of ${channels.length} convolutions, about ${(flops / 1e9).toFixed(2)} GFLOP per image, for load tests`,
    bytes: encodeModel({
      name: 'synthetic',
      doc: 'imgpush builtin:synthetic: convolutions with the cost of a small CNN',
      opset: 13,
      inputs: [{ name: 'image', shape: ['batch', 3, SYNTHETIC_INPUT, SYNTHETIC_INPUT] }],
      outputs: [{ name: 'probabilities', shape: ['batch', SYNTHETIC_CLASSES] }],
      initializers,
      nodes,
    }),
    labels: Array.from({ length: SYNTHETIC_CLASSES }, (_, i) => `class-${i}`),
    inputSize: SYNTHETIC_INPUT,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    flopsPerImage: flops,
  };
}
