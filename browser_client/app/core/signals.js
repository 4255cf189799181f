// PeerSignal, the messages two devices exchange inside Noise transport messages (and the Hello
// inside the handshake): the JSON codec of signaling/schema.py for that one union, written to
// give exactly the bytes msgspec gives.
//
// What msgspec does, and so what this does:
// * the tag "t" comes first, then the fields in msgspec's order, which puts the inherited "v"
//   LAST (kw_only fields of a base class follow the subclass's own);
// * fields with defaults are written too (omit_defaults is off): Bye() is
//   {"t":"bye","message":"","v":1};
// * compact JSON, non-ASCII as raw UTF-8, control characters escaped exactly as JSON.stringify
//   escapes them (\b \t \n \f \r, else \u00XX in lower case), "/" and U+2028 not escaped;
// * bytes as standard base64 with padding;
// * decoding rejects unknown tags and unknown fields, fills defaults, checks every bound;
//   string lengths count code points.
//
// SIGNAL_SCHEMA below is compared by the tests with the same description generated from
// msgspec (tests/vectors/session.json "signal_schema"), so it cannot silently drift.

import { base64Decode, base64Encode, codePointLength, isWellFormed, utf8Decode, utf8Encode } from './bytes.js';
import { PeerbeamError } from './errors.js';

/** Every frame from the network is capped at 64 KiB before it is parsed (DESIGN: Hardening). */
export const MAX_FRAME_BYTES = 64 * 1024;

/**
 * @typedef {object} FieldSpec
 * @property {string} name
 * @property {'str' | 'bytes' | 'int' | 'literal'} kind
 * @property {boolean} required
 * @property {number} [min_length]
 * @property {number} [max_length]
 * @property {Array<string | number>} [values] for kind "literal"
 * @property {boolean} [nullable]
 * @property {unknown} [default] present when not required
 */

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
 * @typedef {{t: string, [field: string]: unknown}} Signal
 */

/**
 * Whether `value` fits `field`; `value` is already in its JS form (bytes as Uint8Array).
 * @param {FieldSpec} field
 * @param {unknown} value
 */
function fits(field, value) {
  if (value === null) return field.nullable === true;
  let length;
  switch (field.kind) {
    case 'literal':
      return /** @type {unknown[]} */ (field.values).includes(value);
    case 'int':
      // JSON.parse cannot tell 1 from 1.0, and integers past 2**53 lose their value: only safe
      // integers are accepted (msgspec refuses 1.0 but takes any size).
      return Number.isSafeInteger(value);
    case 'str':
      // A lone surrogate survives JSON.stringify as an escape, but msgspec refuses it.
      if (typeof value !== 'string' || !isWellFormed(value)) return false;
      length = codePointLength(value);
      break;
    case 'bytes':
      if (!(value instanceof Uint8Array)) return false;
      length = value.length;
      break;
  }
  return length >= (field.min_length ?? 0) && length <= (field.max_length ?? Infinity);
}

/** @param {string} tag */
function fieldsOf(tag) {
  return typeof tag === 'string' && Object.hasOwn(SIGNAL_SCHEMA, tag) ? SIGNAL_SCHEMA[tag] : null;
}

/**
 * The JSON bytes msgspec would write for this signal. Throws TypeError for a signal that does
 * not fit the schema: that is a bug here, the peer would refuse it.
 * @param {Signal} signal
 * @returns {Uint8Array}
 */
export function encodeSignal(signal) {
  const fields = fieldsOf(signal?.t);
  if (fields === null) throw new TypeError(`not a peer signal: ${signal?.t}`);
  const known = new Set(['t', ...fields.map((f) => f.name)]);
  const unknown = Object.keys(signal).filter((key) => !known.has(key));
  if (unknown.length) throw new TypeError(`${signal.t} has no field ${unknown[0]}`);
  let json = `{"t":${JSON.stringify(signal.t)}`;
  for (const field of fields) {
    const value = signal[field.name] === undefined && !field.required ? field.default : signal[field.name];
    if (!fits(field, value)) throw new TypeError(`${signal.t}: bad value for ${field.name}`);
    const text = value instanceof Uint8Array ? `"${base64Encode(value)}"` : JSON.stringify(value);
    json += `,"${field.name}":${text}`;
  }
  return utf8Encode(`${json}}`);
}

/**
 * Parse and check one signal. Throws PeerbeamError: "frame_too_large", "bad_json" (not UTF-8
 * JSON) or "bad_message" (valid JSON, not a PeerSignal of this schema version).
 * @param {Uint8Array} data
 * @returns {Readonly<Signal>}
 */
export function decodeSignal(data) {
  if (data.length > MAX_FRAME_BYTES) throw new PeerbeamError('frame_too_large');
  let parsed;
  try {
    parsed = JSON.parse(utf8Decode(data));
  } catch {
    throw new PeerbeamError('bad_json');
  }
  const misfit = (/** @type {string} */ why) =>
    new PeerbeamError('bad_message', `The message does not fit the schema: ${why}.`);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw misfit('not an object');
  const fields = fieldsOf(parsed.t);
  if (fields === null) throw misfit('unknown or missing tag');
  /** @type {Signal} */
  const signal = { t: parsed.t };
  for (const key of Object.keys(parsed)) {
    if (key !== 't' && !fields.some((f) => f.name === key)) throw misfit(`unknown field ${key}`);
  }
  for (const field of fields) {
    if (!Object.hasOwn(parsed, field.name)) {
      if (field.required) throw misfit(`missing field ${field.name}`);
      signal[field.name] = field.default;
      continue;
    }
    let value = parsed[field.name];
    if (field.kind === 'bytes' && typeof value === 'string') value = base64Decode(value) ?? undefined;
    if (!fits(field, value)) throw misfit(`bad value for ${field.name}`);
    signal[field.name] = value;
  }
  return Object.freeze(signal);
}
