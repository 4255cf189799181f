// The JSON codec of signaling/schema.py for flat tagged records, written to give exactly the
// bytes msgspec gives. signals.js (PeerSignal) and channel.js (ChannelMessage) are two tables
// for it; wire.js uses it for what a device sends the server.
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
// Each table is compared by the tests with the same description generated from msgspec, so it
// cannot silently drift.

import { base64Decode, base64Encode, codePointLength, isWellFormed, utf8Decode, utf8Encode } from './bytes.js';
import { PeerbeamError } from './errors.js';

/** Every frame from the network is capped at 64 KiB before it is parsed (DESIGN: Hardening). */
export const MAX_FRAME_BYTES = 64 * 1024;

/**
 * @typedef {object} FieldSpec
 * @property {string} name
 * @property {'str' | 'bytes' | 'int' | 'float' | 'bool' | 'literal' | 'records' | 'record'} kind
 * @property {FieldSpec[]} [item] for kinds "records" and "record": the fields of each untagged record
 * @property {boolean} required
 * @property {number} [min_length]
 * @property {number} [max_length]
 * @property {number} [ge] for kind "int": the least value
 * @property {number} [le] for kind "int": the greatest value
 * @property {string} [pattern] for kind "str": a regular expression the whole value matches
 * @property {Array<string | number>} [values] for kind "literal"
 * @property {boolean} [nullable]
 * @property {unknown} [default] present when not required
 */

/**
 * A record as a plain object: `t` names it, the other keys are its fields by their wire names
 * (snake_case); `bytes` fields are Uint8Array. Decoded records carry every field, defaults
 * included, and are frozen.
 * @typedef {{t: string, [field: string]: unknown}} TaggedRecord
 */

/** @type {Map<string, RegExp>} */
const patterns = new Map();

/** @param {string} source a Python `re` pattern that means the same in JavaScript */
function regexp(source) {
  let compiled = patterns.get(source);
  if (compiled === undefined) {
    compiled = new RegExp(source, 'u');
    patterns.set(source, compiled);
  }
  return compiled;
}

/**
 * Whether `value` fits `field`; `value` is already in its JS form (bytes as Uint8Array).
 * @param {FieldSpec} field
 * @param {unknown} value
 */
export function fits(field, value) {
  if (value === null) return field.nullable === true;
  let length;
  switch (field.kind) {
    case 'literal':
      return /** @type {unknown[]} */ (field.values).includes(value);
    case 'int':
      // JSON.parse cannot tell 1 from 1.0, and integers past 2**53 lose their value: only safe
      // integers are accepted (msgspec refuses 1.0 but takes any size).
      return Number.isSafeInteger(value) && value >= (field.ge ?? -Infinity) && value <= (field.le ?? Infinity);
    case 'float':
      // msgspec takes integers for float fields; JSON has no NaN or infinities.
      return typeof value === 'number' && Number.isFinite(value);
    case 'bool':
      // msgspec refuses 0 and 1 for a bool.
      return typeof value === 'boolean';
    case 'record':
      // One untagged record (PageText in page.push), already decoded by recordsFrom.
      return typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array);
    case 'str':
      // A lone surrogate survives JSON.stringify as an escape, but msgspec refuses it.
      if (typeof value !== 'string' || !isWellFormed(value)) return false;
      if (field.pattern !== undefined && !regexp(field.pattern).test(value)) return false;
      length = codePointLength(value);
      break;
    case 'bytes':
      if (!(value instanceof Uint8Array)) return false;
      length = value.length;
      break;
    case 'records':
      // A list of untagged records (PageThumb in page.push), already decoded by recordsFrom.
      if (!Array.isArray(value)) return false;
      length = value.length;
      break;
    default:
      return false;
  }
  return length >= (field.min_length ?? 0) && length <= (field.max_length ?? Infinity);
}

/** A float as msgspec writes it: integral values keep a ".0" (5.0, not 5). @param {number} n */
function floatText(n) {
  const text = JSON.stringify(n);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

/**
 * A list of untagged records as msgspec writes it: fields in order, defaults written.
 * @param {FieldSpec[]} item @param {Record<string, unknown>[]} records
 */
function recordsJson(item, records) {
  const names = new Set(item.map((f) => f.name));
  return `[${records.map((record) => {
    const unknown = Object.keys(record).filter((key) => !names.has(key));
    if (unknown.length) throw new TypeError(`a record has no field ${unknown[0]}`);
    return `{${item.map((field) => {
      const value = record[field.name] === undefined && !field.required ? field.default : record[field.name];
      if (!fits(field, value)) throw new TypeError(`bad value for ${field.name}`);
      return `"${field.name}":${field.kind === 'float' && value !== null ? floatText(/** @type {number} */ (value)) : JSON.stringify(value)}`;
    }).join(',')}}`;
  }).join(',')}]`;
}

/**
 * The parsed JSON of a list of untagged records, checked field by field; null if anything
 * does not fit (unknown or missing fields, bad values).
 * @param {FieldSpec[]} item @param {unknown} value
 * @returns {Readonly<Record<string, unknown>>[] | null}
 */
function recordsFrom(item, value) {
  if (!Array.isArray(value)) return null;
  const out = [];
  for (const entry of value) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return null;
    if (Object.keys(entry).some((key) => !item.some((f) => f.name === key))) return null;
    /** @type {Record<string, unknown>} */
    const record = {};
    for (const field of item) {
      if (!Object.hasOwn(entry, field.name)) {
        if (field.required) return null;
        record[field.name] = field.default;
      } else if (fits(field, entry[field.name])) {
        record[field.name] = entry[field.name];
      } else {
        return null;
      }
    }
    out.push(Object.freeze(record));
  }
  return out;
}

/**
 * The encoder and decoder for one union of tagged records.
 * @param {Readonly<Record<string, FieldSpec[]>>} schema tag -> fields, in msgspec's order
 * @param {string} what the union's name, for error sentences ("peer signal", "channel message")
 */
export function codecFor(schema, what) {
  /** @param {unknown} tag */
  const fieldsOf = (tag) => (typeof tag === 'string' && Object.hasOwn(schema, tag) ? schema[tag] : null);

  /**
   * The JSON bytes msgspec would write for this record. Throws TypeError for a record that
   * does not fit the schema: that is a bug here, the peer would refuse it.
   * @param {TaggedRecord} record
   * @returns {Uint8Array}
   */
  function encode(record) {
    const fields = fieldsOf(record?.t);
    if (fields === null) throw new TypeError(`not a ${what}: ${record?.t}`);
    const known = new Set(['t', ...fields.map((f) => f.name)]);
    const unknown = Object.keys(record).filter((key) => !known.has(key));
    if (unknown.length) throw new TypeError(`${record.t} has no field ${unknown[0]}`);
    let json = `{"t":${JSON.stringify(record.t)}`;
    for (const field of fields) {
      const value = record[field.name] === undefined && !field.required ? field.default : record[field.name];
      if (!fits(field, value)) throw new TypeError(`${record.t}: bad value for ${field.name}`);
      let text;
      if (value instanceof Uint8Array) text = `"${base64Encode(value)}"`;
      else if (field.kind === 'records') text = recordsJson(/** @type {FieldSpec[]} */ (field.item), /** @type {Record<string, unknown>[]} */ (value));
      else if (field.kind === 'record' && value !== null) text = recordsJson(/** @type {FieldSpec[]} */ (field.item), [/** @type {Record<string, unknown>} */ (value)]).slice(1, -1);
      else if (field.kind === 'float' && value !== null) text = floatText(/** @type {number} */ (value));
      else text = JSON.stringify(value);
      json += `,"${field.name}":${text}`;
    }
    return utf8Encode(`${json}}`);
  }

  /**
   * Parse and check one record. Throws PeerbeamError: "frame_too_large", "bad_json" (not
   * UTF-8 JSON) or "bad_message" (valid JSON, not a record of this union and version).
   * @param {Uint8Array | string} data
   * @returns {Readonly<TaggedRecord>}
   */
  function decode(data) {
    // Python measures what it was given: bytes in bytes, a str (a data channel's string
    // message) in code points. The UTF-16 length bounds the work before counting.
    const tooLarge = typeof data === 'string'
      ? data.length > MAX_FRAME_BYTES && (data.length > 2 * MAX_FRAME_BYTES || codePointLength(data) > MAX_FRAME_BYTES)
      : data.length > MAX_FRAME_BYTES;
    if (tooLarge) throw new PeerbeamError('frame_too_large');
    let parsed;
    try {
      parsed = JSON.parse(typeof data === 'string' ? data : utf8Decode(data));
    } catch {
      throw new PeerbeamError('bad_json');
    }
    const misfit = (/** @type {string} */ why) =>
      new PeerbeamError('bad_message', `The message does not fit the schema: ${why}.`);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw misfit('not an object');
    const fields = fieldsOf(parsed.t);
    if (fields === null) throw misfit('unknown or missing tag');
    /** @type {TaggedRecord} */
    const record = { t: parsed.t };
    for (const key of Object.keys(parsed)) {
      if (key !== 't' && !fields.some((f) => f.name === key)) throw misfit(`unknown field ${key}`);
    }
    for (const field of fields) {
      if (!Object.hasOwn(parsed, field.name)) {
        if (field.required) throw misfit(`missing field ${field.name}`);
        record[field.name] = field.default;
        continue;
      }
      let value = parsed[field.name];
      if (field.kind === 'bytes' && typeof value === 'string') value = base64Decode(value) ?? undefined;
      if (field.kind === 'records') value = recordsFrom(/** @type {FieldSpec[]} */ (field.item), value);
      if (field.kind === 'record' && value !== null) value = recordsFrom(/** @type {FieldSpec[]} */ (field.item), [value])?.[0];
      if (!fits(field, value)) throw misfit(`bad value for ${field.name}`);
      record[field.name] = value;
    }
    return Object.freeze(record);
  }

  return Object.freeze({ encode, decode });
}
