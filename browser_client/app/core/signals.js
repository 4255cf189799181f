// PeerSignal, the messages two devices exchange inside Noise transport messages (and the Hello
// inside the handshake): the table of signaling/schema.py for that one union, for codec.js,
// which writes exactly the bytes msgspec writes (tag first, "v" last, defaults written, bytes
// as padded base64) and refuses what msgspec refuses.
//
// SIGNAL_SCHEMA below is compared by the tests with the same description generated from
// msgspec (tests/vectors/session.json "signal_schema"), so it cannot silently drift.

import { MAX_FRAME_BYTES, codecFor } from './codec.js';

export { MAX_FRAME_BYTES };

/** @typedef {import('./codec.js').FieldSpec} FieldSpec */

const V = { name: 'v', kind: 'literal', values: [1], required: false, default: 1 };
const SENTENCE = { kind: 'str', max_length: 1024 };

/** @type {Readonly<Record<string, FieldSpec[]>>} */
export const SIGNAL_SCHEMA = Object.freeze({
  hello: [
    { name: 'name', kind: 'str', min_length: 1, max_length: 64, required: true },
    { name: 'identity_key', kind: 'bytes', min_length: 32, max_length: 32, required: true },
    { name: 'device', kind: 'literal', values: ['cli', 'pc', 'phone'], required: true },
    V,
  ],
  'pair.accept': [V],
  'pair.reject': [{ name: 'message', ...SENTENCE, required: true }, V],
  'rtc.sdp': [
    { name: 'type', kind: 'literal', values: ['answer', 'offer'], required: true },
    { name: 'sdp', kind: 'str', max_length: 32 * 1024, required: true },
    V,
  ],
  'rtc.ice': [
    { name: 'candidate', kind: 'str', max_length: 1024, required: true },
    { name: 'sdp_mid', kind: 'str', max_length: 64, nullable: true, required: false, default: null },
    { name: 'sdp_mline_index', kind: 'int', nullable: true, required: false, default: null },
    V,
  ],
  bye: [{ name: 'message', ...SENTENCE, required: false, default: '' }, V],
  'pair.removed': [V],
});

/**
 * A signal as a plain object: `t` names it, the other keys are its fields by their wire names
 * (snake_case); `bytes` fields are Uint8Array. Decoded signals carry every field, defaults
 * included, and are frozen.
 * @typedef {import('./codec.js').TaggedRecord} Signal
 */

const codec = codecFor(SIGNAL_SCHEMA, 'peer signal');

/**
 * The JSON bytes msgspec would write for this signal. Throws TypeError for a signal that does
 * not fit the schema: that is a bug here, the peer would refuse it.
 * @param {Signal} signal
 * @returns {Uint8Array}
 */
export function encodeSignal(signal) {
  return codec.encode(signal);
}

/**
 * Parse and check one signal. Throws PeerbeamError: "frame_too_large", "bad_json" (not UTF-8
 * JSON) or "bad_message" (valid JSON, not a PeerSignal of this schema version).
 * @param {Uint8Array} data
 * @returns {Readonly<Signal>}
 */
export function decodeSignal(data) {
  return codec.decode(data);
}
