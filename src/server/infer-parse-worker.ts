import { parentPort } from 'node:worker_threads';
import { InferenceProtocolError } from '../shared/inference-protocol.js';
import { ServerError } from './errors.js';
import { parseInferRequest, type InferCall, type InferLimits } from './inference-protocol.js';

/**
 * The thread that checks large v2 JSON bodies, so that JSON.parse of tens
 * of megabytes (5 M empty strings, say) never stops the event loop: health
 * probes and every other request go on meanwhile.
 */
export interface ParseRequest {
  readonly id: number;
  readonly body: Uint8Array;
  readonly headerLength: string | undefined;
  readonly limits: InferLimits;
}

export type ParseReply =
  | { readonly id: number; readonly call: InferCall }
  | { readonly id: number; readonly protocolError: string }
  | { readonly id: number; readonly serverError: { readonly code: ServerError['code']; readonly message: string } };

const port = parentPort;
if (port === null) throw new Error('infer-parse-worker runs as a worker thread');

/** The images moved into one buffer of their own, transferred back rather than copied on the main thread. */
function packed(call: InferCall): { call: InferCall; transfer: ArrayBuffer[] } {
  const memory = new ArrayBuffer(call.images.reduce((size, image) => size + image.length, 0));
  let at = 0;
  const images = call.images.map((image) => {
    const view = Buffer.from(memory, at, image.length);
    image.copy(view);
    at += image.length;
    return view;
  });
  return { call: { ...call, images }, transfer: [memory] };
}

port.on('message', ({ id, body, headerLength, limits }: ParseRequest) => {
  let reply: ParseReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const checked = packed(parseInferRequest(Buffer.from(body.buffer, body.byteOffset, body.byteLength), headerLength, limits));
    reply = { id, call: checked.call };
    transfer = checked.transfer;
  } catch (error) {
    if (error instanceof ServerError) reply = { id, serverError: { code: error.code, message: error.message } };
    else if (error instanceof InferenceProtocolError) reply = { id, protocolError: error.message };
    else reply = { id, protocolError: `the inference request does not check out: ${(error as Error).message}` };
  }
  port.postMessage(reply, transfer);
});
