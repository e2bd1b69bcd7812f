/**
 * Every `IMGPUSH_…` code the reference server answers with, its HTTP status
 * and what it means. ServerError takes a key of this catalog, so a code
 * the catalog lacks does not compile; docs/errors.md lists the same codes.
 * Under /v2 the protocol answers 400 where this says 415 or 422.
 */
export const SERVER_CODES = {
  IMGPUSH_BAD_TOP_K: { status: 400, meaning: 'top_k is not a whole number of 1 or more' },
  IMGPUSH_NO_IMAGE: { status: 400, meaning: 'the request holds no image: send multipart/form-data or a raw image body' },
  IMGPUSH_EMPTY_FILE: { status: 400, meaning: 'an image of the request is empty' },
  IMGPUSH_BAD_MULTIPART: { status: 400, meaning: 'the multipart body does not parse' },
  IMGPUSH_BAD_CALLBACK: { status: 400, meaning: 'a job\'s callback_url is not an http(s) URL' },
  IMGPUSH_CALLBACK_REFUSED: { status: 400, meaning: 'a job\'s callback_url names a host the server may not call' },
  IMGPUSH_BAD_V2_BODY: { status: 400, meaning: 'a v2 inference request breaks the Open Inference Protocol; the message says where' },
  IMGPUSH_DIGEST_MISMATCH: { status: 400, meaning: 'the body does not hash to the sha-256 its Content-Digest names (RFC 9530), or that digest is malformed' },
  IMGPUSH_BAD_HTTP: { status: 400, meaning: 'the request is not valid HTTP/1.1' },
  IMGPUSH_UNAUTHORIZED: { status: 401, meaning: 'a missing or wrong bearer token (--token)' },
  IMGPUSH_NOT_FOUND: { status: 404, meaning: 'no such route' },
  IMGPUSH_NO_SUCH_MODEL: { status: 404, meaning: 'a v2 path names a model this server does not serve' },
  IMGPUSH_NO_SUCH_VERSION: { status: 404, meaning: 'a v2 path names a version the model does not have' },
  IMGPUSH_NO_SUCH_JOB: { status: 404, meaning: 'no such job: it never existed, or its result is gone' },
  IMGPUSH_REQUEST_TIMEOUT: { status: 408, meaning: 'the request did not arrive within --request-timeout, or its headers within --header-timeout' },
  IMGPUSH_BODY_TOO_LARGE: { status: 413, meaning: 'the body is over --max-body-size' },
  IMGPUSH_FILE_TOO_LARGE: { status: 413, meaning: 'an image is over --max-file-size' },
  IMGPUSH_TOO_MANY_FILES: { status: 413, meaning: 'a request holds more images than --max-files' },
  IMGPUSH_NOT_AN_IMAGE: { status: 415, meaning: 'a file\'s first bytes match no image type the server decodes (BMP and HEIC included, with prebuilt sharp)' },
  IMGPUSH_UNSUPPORTED_ENCODING: { status: 415, meaning: 'the body has a Content-Encoding (gzip, deflate…): the server takes bodies as they are' },
  IMGPUSH_UNDECODABLE: { status: 422, meaning: 'an image does not decode, or its decoder warned (damaged, truncated, or not what its header says)' },
  IMGPUSH_TOO_MANY_PIXELS: { status: 422, meaning: 'an image\'s header declares more pixels than --max-pixels; it was not decoded' },
  IMGPUSH_DECODE_TIMEOUT: { status: 422, meaning: 'an image took longer than --decode-timeout to decode' },
  IMGPUSH_HEADERS_TOO_LARGE: { status: 431, meaning: 'the request\'s headers are over 16 KB' },
  IMGPUSH_RATE_LIMITED: { status: 429, meaning: 'more requests a second from one address than --rate-limit; retry after Retry-After' },
  IMGPUSH_QUEUE_FULL: { status: 429, meaning: 'the server holds as much work as it may; retry after Retry-After' },
  IMGPUSH_TOO_MANY_JOBS: { status: 429, meaning: '--max-jobs jobs are pending; retry after Retry-After' },
  IMGPUSH_SERVER_ERROR: { status: 500, meaning: 'a fault in the server; the message says what' },
  IMGPUSH_INFERENCE: { status: 500, meaning: 'the model failed to run a batch' },
  IMGPUSH_SHUT_DOWN: { status: 503, meaning: 'a job\'s error: the server shut down before it finished (--shutdown-timeout)' },
  IMGPUSH_NOT_READY: { status: 503, meaning: 'the model is still loading, or the server is shutting down; retry after Retry-After' },
} as const satisfies Record<string, { readonly status: number; readonly meaning: string }>;

export type ServerCode = keyof typeof SERVER_CODES;

/** What stops `imgpush serve` before it listens (exit 2), by code. */
export const SERVER_START_CODES = {
  IMGPUSH_BAD_MODEL: { exit: 2, meaning: '--model is not a model onnxruntime can load' },
  IMGPUSH_NO_CUDA: { exit: 2, meaning: '--device cuda, and CUDA is not there or does not start' },
} as const satisfies Record<string, { readonly exit: number; readonly meaning: string }>;
