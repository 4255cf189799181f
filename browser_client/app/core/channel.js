// ChannelMessage, the JSON control messages on the data channel once it is open
// (signaling/schema.py): the table for codec.js of the messages the phone speaks so far.
//
// String messages on the channel are these; binary ones are frames (frames.js). The first
// message each side sends is `bind` (binding.js); after it: text and its receipt, liveness
// pings (which also measure the round-trip time), unpairing, errors, files, page cards and page
// sync (docs/SYNC.md: y-protocols messages in chunks, sync_wire.js).
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
  'not_html', 'page_unreachable', 'unknown_doc', 'bad_update', 'update_too_large', 'no_access', 'not_syncing',
]);

export const MAX_TEXT_CHARS = 16 * 1024;
const V = { name: 'v', kind: 'literal', values: [1], required: false, default: 1 };
const B64ID = { kind: 'str', min_length: 1, max_length: 64, pattern: '^[A-Za-z0-9_-]+$' };
const SENTENCE = { kind: 'str', max_length: 1024 };
export const MAX_THUMBNAILS = 41;
export const MAX_URL_CHARS = 8192;
const TRANSFER_ID = { name: 'id', kind: 'str', pattern: '^[0-9a-f]{16}$', required: true };
const FILE_SIZE = { kind: 'int', ge: 0, le: 64 * 1024 ** 3 };
const SHA256 = { kind: 'str', pattern: '^[0-9a-f]{64}$' };
const MIME = '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$';
/** signaling/schema.py PageThumb: an untagged record inside page.push. */
const PAGE_THUMB = [
  TRANSFER_ID,
  { name: 'kind', kind: 'literal', values: ['image', 'screenshot'], required: false, default: 'image' },
  { name: 'mime', kind: 'literal', values: ['image/jpeg', 'image/webp'], required: true },
  { name: 'width', kind: 'int', ge: 1, le: 4096, required: true },
  { name: 'height', kind: 'int', ge: 1, le: 4096, required: true },
  { name: 'natural_width', kind: 'int', ge: 1, le: 1_000_000, required: true },
  { name: 'natural_height', kind: 'int', ge: 1, le: 1_000_000, required: true },
  { name: 'size', kind: 'int', ge: 1, le: 64 * 1024 - 18, required: true },
  { name: 'sha256', ...SHA256, required: true },
  { name: 'source', kind: 'str', max_length: MAX_URL_CHARS, nullable: true, required: false, default: null },
];

/** signaling/schema.py PageText: the reader view's gzip'd text, one frame like a thumbnail. */
const PAGE_TEXT = [
  TRANSFER_ID,
  { name: 'size', kind: 'int', ge: 1, le: 64 * 1024 - 18, required: true },
  { name: 'sha256', ...SHA256, required: true },
  { name: 'encoding', kind: 'literal', values: ['gzip'], required: false, default: 'gzip' },
];
/** signaling/schema.py DocId: names one shared sync document. */
const DOC_ID = { kind: 'str', pattern: '^[0-9a-f]{16}$' };
export const MAX_SYNC_CHUNK = 32 * 1024;
export const MAX_SYNC_MESSAGE = 1024 * 1024;

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
  // Files (peer_agent/transfer.py): the control half; the bytes travel as frames (frames.js).
  'transfer.offer': [
    TRANSFER_ID,
    { name: 'name', kind: 'str', min_length: 1, max_length: 255, required: true },
    { name: 'size', ...FILE_SIZE, required: true },
    { name: 'sha256', ...SHA256, required: true },
    { name: 'mime', kind: 'str', max_length: 255, pattern: MIME, nullable: true, required: false, default: null },
    V,
  ],
  'transfer.accept': [TRANSFER_ID, { name: 'offset', ...FILE_SIZE, required: true }, V],
  'transfer.reject': [TRANSFER_ID, { name: 'message', ...SENTENCE, required: true }, V],
  'transfer.progress': [TRANSFER_ID, { name: 'received', ...FILE_SIZE, required: true }, V],
  'transfer.cancel': [TRANSFER_ID, { name: 'message', ...SENTENCE, required: true }, V],
  'transfer.done': [TRANSFER_ID, V],
  'transfer.failed': [
    TRANSFER_ID,
    { name: 'code', kind: 'literal', values: [...ERROR_CODES], required: true },
    { name: 'message', ...SENTENCE, required: true },
    V,
  ],
  // Pages (peer_agent/cards.py): a card names its thumbnails; each follows as one frame.
  'page.push': [
    TRANSFER_ID,
    { name: 'url', kind: 'str', max_length: MAX_URL_CHARS, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', required: true },
    { name: 'title', kind: 'str', max_length: 1024, required: true },
    { name: 'thumbs', kind: 'records', max_length: MAX_THUMBNAILS, item: PAGE_THUMB, required: true },
    { name: 'pull', ...B64ID, nullable: true, required: false, default: null },
    { name: 'text', kind: 'record', item: PAGE_TEXT, nullable: true, required: false, default: null },
    { name: 'doc', ...DOC_ID, nullable: true, required: false, default: null },
    V,
  ],
  'page.pull': [{ name: 'id', ...B64ID, required: true }, V],
  'page.refused': [
    { name: 'pull', ...B64ID, required: true },
    { name: 'code', kind: 'literal', values: [...ERROR_CODES], required: true },
    { name: 'message', ...SENTENCE, required: true },
    V,
  ],
  // Page sync (docs/SYNC.md): one shared Yjs document; its y-protocols messages in chunks.
  'sync.start': [V],
  'sync.open': [
    { name: 'doc', ...DOC_ID, required: true },
    { name: 'rejoin', kind: 'bool', required: false, default: false },
    V,
  ],
  'sync.update': [
    { name: 'doc', ...DOC_ID, required: true },
    { name: 'data', kind: 'bytes', min_length: 1, max_length: MAX_SYNC_CHUNK, required: true },
    { name: 'more', kind: 'bool', required: false, default: false },
    V,
  ],
  'sync.reader': [{ name: 'doc', ...DOC_ID, required: true }, { ...TRANSFER_ID, name: 'card' }, V],
  'sync.stop': [{ name: 'doc', ...DOC_ID, required: true }, V],
  'sync.refused': [
    { name: 'code', kind: 'literal', values: [...ERROR_CODES], required: true },
    { name: 'message', ...SENTENCE, required: true },
    V,
  ],
});

/** Every message of the Python union is ported now: none is let go unread. */
export const LATER_TAGS = Object.freeze([]);

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
 * Parse one string message. Returns null for a valid message of LATER_TAGS (none today);
 * throws PeerbeamError ("frame_too_large", "bad_json", "bad_message") otherwise.
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
