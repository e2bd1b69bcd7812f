import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeBytesTensor, decodeInferenceResponse, decodeTensorData, encodeBytesTensor, encodeFp32Tensor, encodeImageRequest,
  HEADER_LENGTH, InferenceProtocolError, joinBinaryBody, splitBinaryBody,
} from '../../src/shared/inference-protocol.js';

test('BYTES elements survive the binary layout byte for byte: empty, UTF-8, binary, and large ones', () => {
  const elements = [Buffer.alloc(0), Buffer.from('rouge, grün, 青'), Buffer.from([0, 1, 2, 255, 0]), Buffer.alloc(70_000, 7)];
  const encoded = encodeBytesTensor(elements);
  assert.equal(encoded.length, elements.reduce((size, element) => size + 4 + element.length, 0));
  assert.equal(encoded.readUInt32LE(4 + 0), Buffer.byteLength('rouge, grün, 青'), 'each element starts with its length, little-endian');
  assert.deepEqual(decodeBytesTensor(encoded, 'input "image"'), elements);
  assert.deepEqual(decodeTensorData('BYTES', encodeBytesTensor(['red', 'gray']), 'output label'), ['red', 'gray']);
});

test('a BYTES tensor cut short is an InferenceProtocolError naming the element', () => {
  const encoded = encodeBytesTensor([Buffer.from('first'), Buffer.from('second')]);
  assert.throws(() => decodeBytesTensor(encoded.subarray(0, encoded.length - 2), 'input "image"'),
    (error: unknown) => error instanceof InferenceProtocolError && /input "image" ends inside element 1: its length says 6 bytes, 4 are left/.test(error.message));
  assert.throws(() => decodeBytesTensor(encoded.subarray(0, 11), 'input "image"'), /inside the 4-byte length of element 1/);
});

test('FP32 values and the fixed-size types read back from little-endian bytes', () => {
  assert.deepEqual(decodeTensorData('FP32', encodeFp32Tensor([1, 0.5, -2.25]), 'output score'), [1, 0.5, -2.25]);
  const int64 = Buffer.alloc(16);
  int64.writeBigInt64LE(-3n, 0);
  int64.writeBigInt64LE(2n ** 40n, 8);
  assert.deepEqual(decodeTensorData('INT64', int64, 'output x'), [-3, 2 ** 40]);
  assert.deepEqual(decodeTensorData('BOOL', Buffer.from([1, 0]), 'output x'), [true, false]);
  assert.throws(() => decodeTensorData('FP32', Buffer.alloc(6), 'output score'), /6 bytes, not a whole number of FP32 elements/);
  assert.throws(() => decodeTensorData('FP16', Buffer.alloc(4), 'output h'), /FP16, which imgpush does not decode/);
});

test('a binary body splits back into its JSON header and its tensor bytes; a bad header length is refused', () => {
  const { body, headerLength } = joinBinaryBody({ inputs: [] }, [Buffer.from('abc'), Buffer.from('de')]);
  const { header, binary } = splitBinaryBody(body, String(headerLength));
  assert.deepEqual(header, { inputs: [] });
  assert.equal(binary.toString(), 'abcde');
  assert.deepEqual(splitBinaryBody(Buffer.from('{"a":1}'), undefined), { header: { a: 1 }, binary: Buffer.alloc(0) });
  assert.throws(() => splitBinaryBody(body, body.length + 1), /Inference-Header-Content-Length is \d+ but the whole body is \d+ bytes/);
  assert.throws(() => splitBinaryBody(body, 'twelve'), /must be a whole number of bytes/);
  assert.throws(() => splitBinaryBody(body, headerLength - 1), /the JSON header \(the first \d+ bytes, by Inference-Header-Content-Length\) does not parse as JSON/);
});

test('an image request carries the images as one BYTES input, binary by default or base64 in JSON', () => {
  const images = [Buffer.from('image one'), Buffer.from('image two!')];
  const binary = encodeImageRequest(images, { id: 'r1', topK: 2, binaryOutput: true });
  assert.equal(binary.headers['content-type'], 'application/octet-stream');
  const { header, binary: data } = splitBinaryBody(binary.body, binary.headers[HEADER_LENGTH]);
  assert.deepEqual(header, {
    id: 'r1', parameters: { top_k: 2, binary_data_output: true },
    inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: data.length } }],
  });
  assert.deepEqual(decodeBytesTensor(data, 'input "image"'), images);

  const json = encodeImageRequest(images, { binaryInput: false });
  assert.equal(json.headers['content-type'], 'application/json');
  assert.equal(json.headers[HEADER_LENGTH], undefined);
  assert.deepEqual(JSON.parse(json.body.toString()), { inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: images.map((image) => image.toString('base64')) }] });
});

test('an answer with binary outputs decodes to the same data as its JSON form', () => {
  const labels = encodeBytesTensor(['red', 'gray', 'blue', 'black']);
  const scores = encodeFp32Tensor([0.75, 0.25, 0.5, 0.5]);
  const { body, headerLength } = joinBinaryBody({
    model_name: 'm', id: 'x', outputs: [
      { name: 'label', datatype: 'BYTES', shape: [2, 2], parameters: { binary_data_size: labels.length } },
      { name: 'score', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: scores.length } },
    ],
  }, [labels, scores]);
  const answer = decodeInferenceResponse(body, headerLength);
  assert.equal(answer.id, 'x');
  assert.deepEqual(answer.outputs.map((output) => output.data), [['red', 'gray', 'blue', 'black'], [0.75, 0.25, 0.5, 0.5]]);
  const plain = Buffer.from(JSON.stringify({ model_name: 'm', outputs: [{ name: 'score', datatype: 'FP32', shape: [1], data: [1] }] }));
  assert.deepEqual(decodeInferenceResponse(plain, undefined).outputs[0]?.data, [1]);
  assert.throws(() => decodeInferenceResponse(Buffer.concat([body, Buffer.from('!')]), headerLength), /1 bytes follow the outputs' binary data/);
  assert.throws(() => decodeInferenceResponse(body.subarray(0, body.length - 1), headerLength), /output score says binary_data_size 16 but 15 bytes/);
});
