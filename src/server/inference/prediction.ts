import { createHash } from 'node:crypto';
import { sniffImageType } from '../../shared/image-type.js';
import type { Admission } from '../admission.js';
import { ServerError } from '../errors.js';
import type { ServerMetrics } from '../metrics.js';
import type { Batcher } from './batcher.js';
import type { Model } from './model.js';
import type { ImageDecoder } from './preprocess.js';
import type { ResultCache } from './result-cache.js';

/** Labels per image when a request names no count. */
export const DEFAULT_TOP_K = 5;

/** One image of a request; `name` is how error messages call it. */
export interface Upload {
  readonly name: string;
  readonly bytes: Buffer;
}

/** What predicting reads of the server at each call: the model and its batcher once loaded, the metrics to count in. */
export interface Serving {
  readonly model: Model | undefined;
  readonly batcher: Batcher | undefined;
  readonly metrics: ServerMetrics;
}

export interface Prediction {
  readonly name: string;
  readonly sha256: string;
  readonly size: number;
  readonly width: number;
  readonly height: number;
  /** Best first; `index` is the class's position in the model's output (Triton's classification strings name it). */
  readonly top: ReadonlyArray<{ label: string; score: number; index: number }>;
  readonly cache: boolean;
  readonly timings: { decodeMs: number; queueMs: number; inferenceMs: number; batchSize: number };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function ranked(output: Float32Array, labels: readonly string[], k: number): Array<{ label: string; score: number; index: number }> {
  return Array.from(output, (score, index) => ({ label: labels[index] ?? `class-${index}`, score, index }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map(({ label, score, index }) => ({ label, score: Math.round(score * 1e6) / 1e6, index }));
}

/**
 * One image, from its bytes to its labels: admitted, sniffed, looked up in
 * the cache, else decoded off the loop, batched, ranked. Every route that
 * predicts comes through here, so admission, batching, the cache and the
 * metrics see them all.
 */
export class Predictor {
  readonly #serving: Serving;
  readonly #cache: ResultCache;
  readonly #decoder: ImageDecoder;
  readonly #admission: Admission;

  constructor(serving: Serving, parts: { cache: ResultCache; decoder: ImageDecoder; admission: Admission }) {
    this.#serving = serving;
    this.#cache = parts.cache;
    this.#decoder = parts.decoder;
    this.#admission = parts.admission;
  }

  async predict(upload: Upload, k: number): Promise<Prediction> {
    this.#admission.takeImage();
    try {
      return await this.#predict(upload, k);
    } finally {
      this.#admission.releaseImage();
    }
  }

  async #predict(upload: Upload, k: number): Promise<Prediction> {
    const { model, batcher, metrics } = this.#serving;
    if (model === undefined || batcher === undefined) throw new ServerError('IMGPUSH_NOT_READY', 'the model is still loading', 1);
    if (upload.bytes.length === 0) throw new ServerError('IMGPUSH_EMPTY_FILE', `${upload.name} is empty`);
    const type = sniffImageType(upload.bytes);
    if (type === undefined) {
      throw new ServerError('IMGPUSH_NOT_AN_IMAGE', `${upload.name} is not an image (its first bytes match no JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF or HEIC)`);
    }
    this.#decoder.assertDecodable(type, upload.name);
    metrics.uploadBytes.inc(upload.bytes.length);
    const sha256 = createHash('sha256').update(upload.bytes).digest('hex');
    const base = { name: upload.name, sha256, size: upload.bytes.length };
    const hit = this.#cache.get(sha256);
    metrics.cache.inc({ result: hit === undefined ? 'miss' : 'hit' });
    if (hit !== undefined) {
      return { ...base, width: hit.width, height: hit.height, top: ranked(hit.output, model.labels, k), cache: true, timings: { decodeMs: 0, queueMs: 0, inferenceMs: 0, batchSize: 0 } };
    }
    const prepared = await this.#decoder.prepare(upload.bytes, type, model.image, upload.name);
    metrics.imagesDecoded.inc();
    metrics.decodeSeconds.observe(prepared.decodeMs / 1000);
    const result = await batcher.submit(prepared.input);
    metrics.queueSeconds.observe(result.queueMs / 1000);
    this.#cache.set(sha256, { output: result.output, width: prepared.width, height: prepared.height });
    return {
      ...base,
      width: prepared.width,
      height: prepared.height,
      top: ranked(result.output, model.labels, k),
      cache: false,
      timings: { decodeMs: round(prepared.decodeMs), queueMs: round(result.queueMs), inferenceMs: round(result.inferenceMs), batchSize: result.batchSize },
    };
  }
}

/** Every prediction settled (none outlives its request or job), then the first failure thrown, else all the results. */
export async function allPredictions(pending: ReadonlyArray<Promise<Prediction>>): Promise<Prediction[]> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<Prediction>).value);
}
