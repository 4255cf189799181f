// Binary data frames, the bytes of a transfer or a thumbnail: the port of peer_agent/frames.py.
//
// JSON control messages travel as data channel *string* messages (PPID 51) and frames as
// *binary* ones (PPID 53, RFC 8831 §8), so the receiver tells them apart by type first.
//
//     0      1        2              10                  18
//     +------+--------+--------------+-------------------+-----------------...
//     | 0xBE | ver=1  | transfer id  | offset (u64, BE)  | payload
//     +------+--------+--------------+-------------------+-----------------...
//
// `offset` is where the payload starts in the file, so the receiver checks order and resume
// point on every frame instead of trusting a running count. Every frame, header included, is
// at most 64 KiB: the peer's SCTP stack may not enforce the max-message-size it advertises
// (RFC 8841 §6; aiortc does not), so we cap what we send and refuse anything bigger.

import { bytesToHex, concatBytes, hexToBytes, readU64be, u64be } from './bytes.js';
import { PeerbeamError } from './errors.js';

export const MAGIC = 0xbe;
export const VERSION = 1;
export const HEADER_BYTES = 18;
export const MAX_FRAME_BYTES = 64 * 1024; // signaling/schema.py MAX_FRAME_BYTES
export const MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - HEADER_BYTES; // = MAX_THUMB_BYTES: one thumbnail, one frame
export const MAX_FILE_BYTES = 64 * 1024 ** 3; // signaling/schema.py MAX_FILE_BYTES
export const TRANSFER_ID_BYTES = 8;

/**
 * One chunk of one transfer.
 * @typedef {object} DataFrame
 * @property {string} transferId 16 lower-case hex digits, the form used in the JSON messages
 * @property {number} offset where the payload starts in the file
 * @property {Uint8Array} payload
 * @property {number} end offset + payload length
 */

/**
 * @param {string} transferId 16 hex digits
 * @param {number} offset
 * @param {Uint8Array} payload 1..MAX_PAYLOAD_BYTES bytes
 * @returns {Uint8Array}
 */
export function encodeFrame(transferId, offset, payload) {
  const rawId = hexToBytes(transferId);
  if (rawId.length !== TRANSFER_ID_BYTES) throw new RangeError('a transfer id is 8 bytes');
  if (payload.length < 1 || payload.length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`a frame payload is 1..${MAX_PAYLOAD_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > MAX_FILE_BYTES - payload.length) {
    throw new RangeError('offset out of range');
  }
  return concatBytes(new Uint8Array([MAGIC, VERSION]), rawId, u64be(offset), payload);
}

/**
 * Parse one binary message (wrap an ArrayBuffer in a Uint8Array first). Anything malformed
 * throws PeerbeamError with code "bad_frame", or "frame_too_large" past 64 KiB.
 * @param {Uint8Array} data
 * @returns {Readonly<DataFrame>}
 */
export function decodeFrame(data) {
  if (data.length > MAX_FRAME_BYTES) {
    throw new PeerbeamError('frame_too_large', 'The other device sent a data frame over 64 KiB.');
  }
  if (data.length <= HEADER_BYTES) {
    throw new PeerbeamError('bad_frame', 'The other device sent a data frame that is too short.');
  }
  if (data[0] !== MAGIC) {
    throw new PeerbeamError('bad_frame', 'The other device sent binary data that is not a peerbeam frame.');
  }
  if (data[1] !== VERSION) {
    throw new PeerbeamError('bad_frame', `The other device sent a data frame of unknown version ${data[1]}.`);
  }
  const payload = data.slice(HEADER_BYTES);
  const offset = readU64be(data, 10);
  if (offset > BigInt(MAX_FILE_BYTES - payload.length)) {
    throw new PeerbeamError('bad_frame', 'The other device sent a data frame beyond the largest file size.');
  }
  const start = Number(offset);
  return Object.freeze({
    transferId: bytesToHex(data.subarray(2, 10)),
    offset: start,
    payload,
    end: start + payload.length,
  });
}
