import type { FastifyRequest } from 'fastify';
import { assertDigest, claimedSha256, sha256, tapSha256 } from './content-digest.js';
import { ServerError } from './errors.js';
import { DEFAULT_TOP_K, type Upload } from './inference/prediction.js';

/** The `top_k` query parameter of a v1 route; the default when absent. */
export function topK(query: unknown): number {
  const raw = (query as { top_k?: unknown }).top_k;
  if (raw === undefined) return DEFAULT_TOP_K;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new ServerError('IMGPUSH_BAD_TOP_K', `top_k must be a whole number of 1 or more (got ${JSON.stringify(String(raw).slice(0, 40))})`);
  return value;
}

export interface UploadLimits {
  /** The whole body, all parts together (413 beyond). */
  readonly maxBodySize: number;
}

/** The images of a request: every file part of a multipart body (any field name), or a raw image body. Form fields go to `fields`. */
export async function* uploadsOf(request: FastifyRequest, { maxBodySize }: UploadLimits, fields: Record<string, string> = {}): AsyncGenerator<Upload> {
  const claimed = claimedSha256(request.headers['content-digest']);
  if (!request.isMultipart()) {
    if (!Buffer.isBuffer(request.body)) throw new ServerError('IMGPUSH_NO_IMAGE', 'send the image as multipart/form-data or as a raw body with an image content type');
    if (claimed !== undefined) assertDigest(claimed, sha256(request.body));
    yield { name: String(request.headers['x-filename'] ?? 'image'), bytes: request.body };
    return;
  }
  // Only when the client sent a digest: hashing every body would cost those that did not.
  const digestOfBody = claimed === undefined ? undefined : tapSha256(request.raw);
  try {
    // Each part is capped by the multipart limits; all of them together by --max-body-size, whatever Content-Length said (or did not).
    let read = 0;
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        const bytes = await part.toBuffer();
        read += bytes.length;
        if (read > maxBodySize) throw new ServerError('IMGPUSH_BODY_TOO_LARGE', `the multipart body's files pass --max-body-size ${maxBodySize} bytes`);
        yield { name: part.filename || part.fieldname, bytes };
      } else if (typeof part.value === 'string') {
        fields[part.fieldname] = part.value;
      }
    }
    if (claimed !== undefined && digestOfBody !== undefined) assertDigest(claimed, digestOfBody());
  } catch (error) {
    // Limits come with their status (413); anything else the parser chokes on is a body that is not valid multipart.
    if (error instanceof ServerError || (error as { statusCode?: unknown }).statusCode !== undefined) throw error;
    throw new ServerError('IMGPUSH_BAD_MULTIPART', `the multipart body does not parse: ${(error as Error).message}`);
  }
}

/** Every image of a request and its form fields (a job's callback_url), read whole before the job is queued. */
export async function readRequest(request: FastifyRequest, limits: UploadLimits): Promise<{ uploads: Upload[]; fields: Record<string, string> }> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) if (typeof value === 'string') fields[name] = value;
  const uploads: Upload[] = [];
  for await (const upload of uploadsOf(request, limits, fields)) uploads.push(upload);
  if (uploads.length === 0) throw new ServerError('IMGPUSH_NO_IMAGE', 'the request holds no file');
  return { uploads, fields };
}
