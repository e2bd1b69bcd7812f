import type { FastifyReply } from 'fastify';
import { ImgpushError } from '../shared/errors.js';
import { InferenceProtocolError } from '../shared/inference-protocol.js';
import { SERVER_CODES, type ServerCode } from './codes.js';

/** An error the server answers with: a code of the catalog (which gives its HTTP status) and a message for the client. */
export class ServerError extends ImgpushError {
  override readonly code: ServerCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ServerCode, message: string, retryAfterSeconds?: number) {
    super(code, message);
    this.code = code;
    this.status = SERVER_CODES[code].status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export interface ErrorAnswer {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly retryAfterSeconds?: number | undefined;
}

/** How any error thrown in a route is answered: its status (500 for none), a stable code, a message. */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof ServerError) return error;
  if (error instanceof InferenceProtocolError) return { status: 400, code: error.code, message: error.message };
  const { statusCode, code, message } = error as { statusCode?: number; code?: string; message: string };
  const status = statusCode !== undefined && statusCode >= 400 && statusCode < 500 ? statusCode : 500;
  // A multipart body that does not parse is the client's error; the parsers name what went wrong.
  const clientStatus = status === 406 ? 400 : status;
  return { status: clientStatus, code: code ?? 'IMGPUSH_SERVER_ERROR', message: clientStatus === 500 ? `internal error: ${message}` : message };
}

/** JSON as bytes, so that Fastify leaves the type as it is: `application/json`, no charset parameter. */
function sendJson(reply: FastifyReply, status: number, body: unknown, retryAfterSeconds: number | undefined): void {
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  void reply.code(status).type('application/json').send(Buffer.from(JSON.stringify(body)));
}

/** The error body everywhere but /v2: `{"error": {"code", "message"}}`. */
export function sendError(reply: FastifyReply, { status, code, message, retryAfterSeconds }: ErrorAnswer): void {
  sendJson(reply, status, { error: { code, message } }, retryAfterSeconds);
}

/** The v2 protocol's error body is `{"error": message}`; the code rides along for clients that match on it. */
export function sendV2Error(reply: FastifyReply, { status, code, message, retryAfterSeconds }: ErrorAnswer): void {
  // The protocol answers every bad image 400: not an image (415) and undecodable (422) included; the message says which.
  const badImage = status === 422 || code === 'IMGPUSH_NOT_AN_IMAGE';
  sendJson(reply, badImage ? 400 : status, { error: message, code }, retryAfterSeconds);
}
