// ChannelMessage, the JSON control messages on the data channel once it is open
// (signaling/schema.py): the table for codec.js of the messages the phone speaks so far.
//
// String messages on the channel are these; binary ones are frames (frames.js). The first
// message each side sends is `bind` (binding.js); after it: text and its receipt, liveness
// pings (which also measure the round-trip time), unpairing, and errors.
//
// The Python test tests/unit/test_js_wire_tables.py holds CHANNEL_SCHEMA, ERROR_CODES and
// LATER_TAGS to msgspec's own description of the union, so none of them can drift.

import { MAX_FRAME_BYTES, codecFor } from './codec.js';

/** signaling/schema.py ErrorCode, in its order. */
export const ERROR_CODES = Object.freeze([
  'bad_json', 'bad_message', 'frame_too_large', 'bad_token', 'token_expired', 'token_used', 'room_full',
  'rate_limited', 'auth_timeout', 'not_in_room', 'already_bound', 'peer_gone', 'interception',
  'pairing_rejected', 'unknown_device', 'connect_timeout', 'relay_unavailable', 'server_unreachable', 'internal',
  'bad_frame', 'hash_mismatch', 'disk_full', 'unknown_transfer', 'stalled', 'inactive', 'no_page', 'bad_scheme',
  'not_html', 'page_unreachable',
]);

export const MAX_TEXT_CHARS = 16 * 1024;
const V = { name: 'v', kind: 'literal', values: [1], required: false, default: 1 };
const B64ID = { kind: 'str', min_length: 1, max_length: 64, pattern: '^[A-Za-z0-9_-]+$' };
const SENTENCE = { kind: 'str', max_length: 1024 };

/** @type {Readonly<Record<string, import('./codec.js').FieldSpec[]>>} */
export const CHANNEL_SCHEMA = Object.freeze({
  bind: [{ name: 'mac', kind: 'bytes', min_length: 32, max_length: 32, required: true }, V],
  text: [
    { name: 'id', ...B64ID, required: true },
    { name: 'text', kind: 'str', max_length: MAX_TEXT_CHARS, required: true },
    V,
  ],
  delivered: [{ name: 'id', ...B64ID, required: true }, V],
  ping: [{ name: 'id', kind: 'int', required: true }, { name: 'sent_at', kind: 'float', required: true }, V],
  pong: [{ name: 'id', kind: 'int', required: true }, { name: 'sent_at', kind: 'float', required: true }, V],
  unpair: [V],
  error: [
    { name: 'code', kind: 'literal', values: [...ERROR_CODES], required: true },
    { name: 'message', ...SENTENCE, required: true },
    V,
  ],
});

/**
 * Messages of the Python union this app does not handle yet (files and page cards come in a
 * later part): a peer may send them, and they are let go quietly instead of being answered
 * with an error.
 */
export const LATER_TAGS = Object.freeze([
  'transfer.offer', 'transfer.accept', 'transfer.reject', 'transfer.progress', 'transfer.cancel', 'transfer.done',
  'transfer.failed', 'page.push', 'page.pull', 'page.refused',
]);

const codec = codecFor(CHANNEL_SCHEMA, 'channel message');

/** @typedef {import('./codec.js').TaggedRecord} ChannelMessage */

/**
 * The JSON text msgspec would write (a data channel string message). Throws TypeError for a
 * message that does not fit, and RangeError past 64 KiB: both are bugs of the caller.
 * @param {ChannelMessage} message
 * @returns {string}
 */
export function encodeChannel(message) {
  const bytes = codec.encode(message);
  if (bytes.length > MAX_FRAME_BYTES) throw new RangeError('a channel message is at most 64 KiB');
  return new TextDecoder().decode(bytes);
}

/**
 * Parse one string message. Returns null for a valid message of LATER_TAGS (not handled
 * here yet); throws PeerbeamError ("frame_too_large", "bad_json", "bad_message") otherwise.
 * @param {string} text
 * @returns {Readonly<ChannelMessage> | null}
 */
export function decodeChannel(text) {
  try {
    return codec.decode(text);
  } catch (err) {
    if (/** @type {{code?: string}} */ (err).code === 'bad_message' && LATER_TAGS.includes(tagOf(text))) return null;
    throw err;
  }
}

/** @param {string} text @returns {string} the "t" of a JSON object, or "" */
function tagOf(text) {
  try {
    const parsed = JSON.parse(text);
    return typeof parsed?.t === 'string' ? parsed.t : '';
  } catch {
    return '';
  }
}
