// frames.js against peer_agent/frames.py (session.json "frames"): the same bytes out, the same
// frames in, the same refusals with the same codes and sentences.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesToHex, concatBytes, hexToBytes } from '../app/core/bytes.js';
import { PeerbeamError } from '../app/core/errors.js';
import {
  HEADER_BYTES, MAX_FILE_BYTES, MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES, decodeFrame, encodeFrame,
} from '../app/core/frames.js';

const F = JSON.parse(readFileSync(new URL('../../tests/vectors/session.json', import.meta.url), 'utf8')).frames;

test('the caps are the Python ones', () => {
  assert.equal(MAX_FRAME_BYTES, F.max_frame_bytes);
  assert.equal(MAX_FILE_BYTES, F.max_file_bytes);
  assert.equal(HEADER_BYTES, 18);
  assert.equal(MAX_PAYLOAD_BYTES, MAX_FRAME_BYTES - HEADER_BYTES);
});

test('encoding gives the bytes Python gives, and decodes back', () => {
  for (const c of F.encoded) {
    const frame = encodeFrame(c.transfer_id, c.offset, hexToBytes(c.payload));
    assert.equal(bytesToHex(frame), c.frame);
    const decoded = decodeFrame(frame);
    assert.deepEqual({ ...decoded, payload: bytesToHex(decoded.payload) },
      { transferId: c.transfer_id, offset: c.offset, payload: c.payload, end: c.offset + c.payload.length / 2 });
  }
});

test('the encoder refuses what Python refuses, as a local error', () => {
  for (const c of F.refused) {
    assert.throws(() => encodeFrame(c.transfer_id, c.offset, new Uint8Array(c.payload_len)),
      (err) => (err instanceof RangeError || err instanceof TypeError), c.why);
  }
});

for (const c of F.decoded) {
  test(`decoding: ${c.why}`, () => {
    const data = concatBytes(hexToBytes(c.head), new Uint8Array(c.fill).fill(0x78));
    if (c.error) {
      assert.throws(() => decodeFrame(data),
        (err) => err instanceof PeerbeamError && err.code === c.error.code && err.message === c.error.message);
    } else {
      const frame = decodeFrame(data);
      assert.deepEqual({ transfer_id: frame.transferId, offset: frame.offset, end: frame.end }, c.frame);
      assert.equal(frame.payload.length, c.fill);
      assert.ok(Object.isFrozen(frame));
    }
  });
}

test('a decoded payload is a copy: reusing the receive buffer cannot change it', () => {
  const data = encodeFrame('0123456789abcdef', 0, new Uint8Array([1, 2, 3]));
  const frame = decodeFrame(data);
  data[HEADER_BYTES] = 9;
  assert.deepEqual(frame.payload, new Uint8Array([1, 2, 3]));
});
